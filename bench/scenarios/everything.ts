/**
 * @module bench/scenarios/everything
 * One realistic run: `@modelcontextprotocol/server-everything` (the SDK's stateful Streamable
 * HTTP server, SSE answers) as the upstream, reached directly, through the node floor (what any
 * Node forwarder pays), through `POST /proxy` and through `/mcp`, each with its own session,
 * calling its `echo` tool; with a baseline proxy (`BENCH_BASELINE_ROOT`), its two paths too,
 * interleaved.
 */
import { PROXY_TOKEN } from '../lib/env.ts';
import { expectAnswer, INITIALIZE, INITIALIZED, openSession, post } from '../lib/mcp-http.ts';
import { type Server, startNodeFloor } from '../lib/servers.ts';
import type { Point } from '../lib/stats.ts';
import { type LoadConfig, measurePoints } from './load.ts';
import { checkSpec, directSpec, mcpSpec, proxySpec } from './paths.ts';

/** Measures the paths (direct, and each proxy's two) at each concurrency. */
export async function measureEverything(
  everything: Server,
  proxy: Server,
  concurrency: readonly number[],
  dir: string,
  log: (line: string) => void,
  baseline?: Server,
): Promise<Point[]> {
  const upstreamUrl = `${everything.base}/mcp`;
  const direct = directSpec(upstreamUrl, await openSession(upstreamUrl, {}));
  const viaProxies = async (server: Server, suffix: string) => [
    {
      path: `POST /proxy${suffix}`,
      spec: proxySpec(server.base, upstreamUrl, await proxySession(server.base, upstreamUrl)),
      serverPids: server.pids,
    },
    {
      path: `/mcp${suffix}`,
      spec: mcpSpec(
        server.base,
        upstreamUrl,
        await openSession(`${server.base}/mcp`, {
          'x-proxy-token': PROXY_TOKEN,
          'x-mcp-server-url': upstreamUrl,
        }),
      ),
      serverPids: server.pids,
    },
  ];
  // What any Node forwarder pays in front of this upstream: the node floor on a session of its own.
  const floor = await startNodeFloor(upstreamUrl);
  const floorSpec = directSpec(`${floor.base}/mcp`, await openSession(upstreamUrl, {}));
  const paths = [
    { path: 'direct', spec: direct, serverPids: undefined },
    { path: 'node floor', spec: floorSpec, serverPids: floor.pids },
    ...(await viaProxies(proxy, '')),
    ...(baseline ? await viaProxies(baseline, ' (baseline)') : []),
  ];
  for (const { path, spec } of paths) await checkSpec(`server-everything ${path}`, spec);
  const configs: LoadConfig[] = [];
  for (const c of concurrency) {
    for (const p of paths) {
      configs.push({
        group: 'everything',
        path: p.path,
        concurrency: c,
        spec: p.spec,
        upstreamPids: everything.pids,
        ...(p.serverPids ? { serverPids: p.serverPids } : {}),
      });
    }
  }
  try {
    return await measurePoints(configs, dir, log);
  } finally {
    await floor.stop();
  }
}

/** initialize + notifications/initialized through POST /proxy; returns the upstream's session id. */
export async function proxySession(proxyBase: string, upstreamUrl: string): Promise<string> {
  const headers = { 'x-proxy-token': PROXY_TOKEN };
  const init = await post(`${proxyBase}/proxy`, headers, { mcp_server_url: upstreamUrl, ...INITIALIZE });
  expectAnswer('initialize through POST /proxy', init, 'protocolVersion');
  const sessionId = init.headers.get('mcp-session-id');
  if (!sessionId) throw new Error('initialize through POST /proxy: no Mcp-Session-Id');
  const done = await post(`${proxyBase}/proxy`, headers, {
    mcp_server_url: upstreamUrl,
    mcp_session_id: sessionId,
    mcp_protocol_version: '2025-06-18',
    ...INITIALIZED,
  });
  if (done.status !== 202) throw new Error(`notifications/initialized through POST /proxy: ${done.status}`);
  return sessionId;
}
