/**
 * @module bench/status-cpu
 * `node bench/status-cpu.ts <baseline-root>` (issue 21): what the status page's recording costs
 * per request. The proxy's CPU time per request on POST /proxy and /mcp against the fast
 * upstream, this checkout against another (without the status page), both with METRICS_TOKEN
 * (and the bench's ADMIN_TOKEN) so metrics run in both and only the status recording differs.
 * Rounds are interleaved so drift on a shared machine hits both alike; medians are printed.
 * Prints figures, asserts nothing.
 */
import { Pool } from 'undici';
import { cpuSecondsOf, stopAll } from './lib/procs.ts';
import { type Server, startFastUpstream, startProxy } from './lib/servers.ts';
import { mcpSpec, proxySpec } from './scenarios/paths.ts';

const REQUESTS = Number(process.env.BENCH_STATUS_REQUESTS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_STATUS_ROUNDS ?? 3);
const CONCURRENCY = 16;
const baselineRoot = process.argv[2];
if (baselineRoot === undefined) throw new Error('usage: node bench/status-cpu.ts <baseline-root>');
const env = { METRICS_TOKEN: 'bench-metrics-token-0123456789abcdef' };

const upstream = await startFastUpstream('json');
const upstreamUrl = `${upstream.base}/mcp`;
const variants: Array<{ name: string; proxy: Server }> = [
  { name: 'baseline', proxy: await startProxy({ root: baselineRoot, name: 'baseline', env }) },
  { name: 'status page', proxy: await startProxy({ name: 'status', env }) },
];

/** Sends `count` requests of `spec` at {@link CONCURRENCY}; returns the proxy's CPU µs per request. */
async function measure(proxy: Server, path: 'proxy' | 'mcp', count: number): Promise<number> {
  const spec = path === 'proxy' ? proxySpec(proxy.base, upstreamUrl) : mcpSpec(proxy.base, upstreamUrl);
  const pool = new Pool(proxy.base, { connections: CONCURRENCY });
  const url = new URL(spec.url);
  const before = cpuSecondsOf(proxy.pids());
  let left = count;
  const worker = async () => {
    while (left-- > 0) {
      const { statusCode, body } = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: spec.headers,
        body: spec.body,
      });
      await body.text();
      if (statusCode !== 200) throw new Error(`${path}: status ${statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const cpu = cpuSecondsOf(proxy.pids()) - before;
  await pool.close();
  return (cpu / count) * 1e6;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
try {
  for (const { proxy } of variants)
    for (const path of ['proxy', 'mcp'] as const) await measure(proxy, path, 1_000);
  const figures = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++)
    for (const path of ['proxy', 'mcp'] as const)
      for (const { name, proxy } of variants) {
        const key = `${path}\t${name}`;
        figures.set(key, [...(figures.get(key) ?? []), await measure(proxy, path, REQUESTS)]);
      }
  process.stdout.write(
    `| path | variant | CPU µs / request (median of ${ROUNDS} × ${REQUESTS}) | rounds |\n|---|---|---|---|\n`,
  );
  for (const [key, values] of figures) {
    const [path, name] = key.split('\t');
    const label = path === 'proxy' ? 'POST /proxy' : '/mcp';
    process.stdout.write(
      `| ${label} | ${name} | ${median(values).toFixed(0)} | ${values.map((v) => v.toFixed(0)).join(', ')} |\n`,
    );
  }
} finally {
  await stopAll();
}
