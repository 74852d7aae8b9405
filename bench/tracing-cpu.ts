/**
 * @module bench/tracing-cpu
 * `node bench/tracing-cpu.ts [baseline-root]` (issue 21): the proxy's CPU time per request on
 * POST /proxy and /mcp against the fast upstream, with tracing off and on (spans exported to an
 * OTLP sink in this process), and, given another checkout, that checkout's proxy as a baseline
 * (tracing off must cost nothing measurable). Rounds are interleaved so drift on a shared
 * machine hits every variant alike; the median is printed. CPU time (user + system of the
 * proxy's process), not throughput: it is what tracing would add. Prints figures, asserts nothing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CpuVariant, compareCpu } from './lib/cpu-compare.ts';
import { stopAll } from './lib/procs.ts';
import { startFastUpstream, startProxy } from './lib/servers.ts';

const REQUESTS = Number(process.env.BENCH_TRACING_REQUESTS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_TRACING_ROUNDS ?? 3);
const baselineRoot = process.argv[2];

/** An OTLP/HTTP sink: reads and drops what it is sent. */
const sink = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

const upstream = await startFastUpstream('json');
const upstreamUrl = `${upstream.base}/mcp`;
const variants: CpuVariant[] = [];
if (baselineRoot)
  variants.push({ name: 'baseline', proxy: await startProxy({ root: baselineRoot, name: 'baseline' }) });
variants.push({ name: 'tracing off', proxy: await startProxy({ name: 'off' }) });
variants.push({
  name: 'tracing on',
  proxy: await startProxy({ name: 'on', env: { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl } }),
});

try {
  await compareCpu(variants, upstreamUrl, { requests: REQUESTS, rounds: ROUNDS });
} finally {
  await stopAll();
  sink.close();
}
