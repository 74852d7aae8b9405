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
import { Pool } from 'undici';
import { cpuSecondsOf, stopAll } from './lib/procs.ts';
import { type Server, startFastUpstream, startProxy } from './lib/servers.ts';
import { mcpSpec, proxySpec } from './scenarios/paths.ts';

const REQUESTS = Number(process.env.BENCH_TRACING_REQUESTS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_TRACING_ROUNDS ?? 3);
const CONCURRENCY = 16;
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
const variants: Array<{ name: string; proxy: Server }> = [];
if (baselineRoot)
  variants.push({ name: 'baseline', proxy: await startProxy({ root: baselineRoot, name: 'baseline' }) });
variants.push({ name: 'tracing off', proxy: await startProxy({ name: 'off' }) });
variants.push({
  name: 'tracing on',
  proxy: await startProxy({ name: 'on', env: { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl } }),
});

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
  sink.close();
}
