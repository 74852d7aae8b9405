/**
 * @module bench/status-cpu
 * `node bench/status-cpu.ts <baseline-root>` (issue 21): what the status page's recording costs
 * per request. The proxy's CPU time per request on POST /proxy and /mcp against the fast
 * upstream, this checkout against another (without the status page), both with METRICS_TOKEN
 * (and the bench's ADMIN_TOKEN) so metrics run in both and only the status recording differs.
 * Rounds are interleaved so drift on a shared machine hits both alike; medians are printed.
 * Prints figures, asserts nothing.
 */
import { type CpuVariant, compareCpu } from './lib/cpu-compare.ts';
import { stopAll } from './lib/procs.ts';
import { startFastUpstream, startProxy } from './lib/servers.ts';

const REQUESTS = Number(process.env.BENCH_STATUS_REQUESTS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_STATUS_ROUNDS ?? 3);
const baselineRoot = process.argv[2];
if (baselineRoot === undefined) throw new Error('usage: node bench/status-cpu.ts <baseline-root>');
const env = { METRICS_TOKEN: 'bench-metrics-token-0123456789abcdef' };

const upstream = await startFastUpstream('json');
const upstreamUrl = `${upstream.base}/mcp`;
const variants: CpuVariant[] = [
  { name: 'baseline', proxy: await startProxy({ root: baselineRoot, name: 'baseline', env }) },
  { name: 'status page', proxy: await startProxy({ name: 'status', env }) },
];

try {
  await compareCpu(variants, upstreamUrl, { requests: REQUESTS, rounds: ROUNDS });
} finally {
  await stopAll();
}
