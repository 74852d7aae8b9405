/**
 * @module bench/virtual-latency
 * What a virtual server adds to a call (issue 20): one client calls `echo` of the fast upstream
 * through `POST /proxy`, one request at a time, first naming the upstream as a configured server
 * (`server: "fast"`, the one-shot route), then through a virtual server of that one member
 * (`server: "workspace"`, `fast__echo`: the member session the proxy holds). Prints the median
 * and p99 of each and their difference. Then the same call through `/servers/workspace/mcp` in
 * a session negotiated at 2025-06-18 (answered JSON) and at 2025-11-25 (a resumable answer
 * stream: its events kept in the store). Figures, never assertions.
 *
 *   BENCH_CALLS=3000 npm exec -- node bench/virtual-latency.ts
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PROXY_TOKEN } from './lib/env.ts';
import { startFastUpstream, startProxy } from './lib/servers.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 2_000);
const WARM_UP = Math.min(500, Math.ceil(CALLS / 4));

const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-bench-'));
const upstream = await startFastUpstream();
const configFile = join(dir, 'proxy.json');
writeFileSync(
  configFile,
  JSON.stringify({
    servers: { fast: { url: `${upstream.base}/mcp`, transport: 'streamable-http' } },
    virtualServers: { workspace: { servers: ['fast'] } },
  }),
);
const proxy = await startProxy({ name: 'proxy (virtual)', configFile });

/** Milliseconds of each of `count` sequential calls. */
async function timeCalls(server: string, tool: string, count: number): Promise<number[]> {
  const body = JSON.stringify({
    server,
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: tool, arguments: { message: 'hi' } },
  });
  const times: number[] = [];
  for (let n = 0; n < count; n++) {
    const start = performance.now();
    const response = await fetch(`${proxy.base}/proxy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-proxy-token': PROXY_TOKEN },
      body,
    });
    const answer = (await response.json()) as { result?: unknown };
    if (answer.result === undefined) throw new Error(`${server}: ${JSON.stringify(answer)}`);
    times.push(performance.now() - start);
  }
  return times;
}

/** Milliseconds of each of `count` sequential calls in a `/servers/workspace/mcp` session of `version`. */
async function timeSessionCalls(version: string, count: number): Promise<number[]> {
  const url = `${proxy.base}/servers/workspace/mcp`;
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'x-proxy-token': PROXY_TOKEN,
  };
  const initialize = {
    protocolVersion: version,
    capabilities: {},
    clientInfo: { name: 'bench', version: '1' },
  };
  const opened = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: initialize }),
  });
  await opened.text();
  const session = {
    ...headers,
    'mcp-session-id': opened.headers.get('mcp-session-id') ?? '',
    'mcp-protocol-version': version,
  };
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'fast__echo', arguments: { message: 'hi' } },
  });
  const times: number[] = [];
  for (let n = 0; n < count; n++) {
    const start = performance.now();
    const text = await (await fetch(url, { method: 'POST', headers: session, body })).text();
    if (!text.includes('"result"')) throw new Error(`${version}: ${text}`);
    times.push(performance.now() - start);
  }
  return times;
}

const quantile = (sorted: readonly number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

try {
  const figures: Array<[string, number, number]> = [];
  for (const [label, server, tool] of [
    ['member directly (server: fast)', 'fast', 'echo'],
    ['through the virtual server (workspace, fast__echo)', 'workspace', 'fast__echo'],
  ] as const) {
    await timeCalls(server, tool, WARM_UP);
    const sorted = (await timeCalls(server, tool, CALLS)).sort((a, b) => a - b);
    figures.push([label, quantile(sorted, 0.5), quantile(sorted, 0.99)]);
  }
  for (const version of ['2025-06-18', '2025-11-25']) {
    await timeSessionCalls(version, WARM_UP);
    const sorted = (await timeSessionCalls(version, CALLS)).sort((a, b) => a - b);
    const how = version === '2025-11-25' ? 'resumable stream' : 'JSON';
    figures.push([
      `/servers/workspace/mcp, session ${version} (${how})`,
      quantile(sorted, 0.5),
      quantile(sorted, 0.99),
    ]);
  }
  for (const [label, median, p99] of figures)
    console.log(`${label}: median ${median.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms (${CALLS} calls)`);
  const [direct, virtual] = figures as [[string, number, number], [string, number, number]];
  console.log(
    `added by the virtual server: median ${(virtual[1] - direct[1]).toFixed(3)} ms, p99 ${(virtual[2] - direct[2]).toFixed(3)} ms`,
  );
} finally {
  await proxy.stop();
  await upstream.stop();
}
