/**
 * @module bench/scenarios/peers
 * Other MCP proxies, installed from npm for the bench only, measured where they can carry the
 * same traffic as ours:
 * - supergateway and mcp-proxy (punkpeye) only front stdio servers, so all three front the same
 *   stdio echo server: one MCP session, every request a tools/call on it (ours through a
 *   configured `servers:` entry at `/servers/echo/mcp`);
 * - the MCP Inspector's web backend forwards to an HTTP server through its `/api/mcp/send`
 *   API (answers come back on its event stream), compared with our `POST /proxy`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ECHO_CALL, NODE, PROXY_TOKEN, ROOT, SERVER_CORES } from '../lib/env.ts';
import { expectAnswer, openSession, post } from '../lib/mcp-http.ts';
import { descendantPids, freePort, type Proc, startPinned, waitUntil } from '../lib/procs.ts';
import { type Server, startProxy } from '../lib/servers.ts';
import type { Point } from '../lib/stats.ts';
import { ensurePeers, PEERS } from '../lib/tools.ts';
import type { RequestSpec } from '../lib/wrk.ts';
import { type LoadConfig, measurePoints } from './load.ts';
import { directSpec, proxySpec } from './paths.ts';

const STDIO_ECHO = join(ROOT, 'bench/servers/stdio-echo.ts');
const INSPECTOR_TOKEN = 'bench-inspector-token-0123456789';

/** Peers that could not be measured, and why. */
export interface PeerNote {
  readonly peer: string;
  readonly note: string;
}

interface Started {
  readonly proc: Proc;
  readonly spec: RequestSpec;
}

/** Runs the comparisons; returns the points and notes on anything that could not run. */
export async function measurePeers(
  upstream: Server,
  concurrency: readonly number[],
  dir: string,
  log: (line: string) => void,
): Promise<{ points: Point[]; notes: PeerNote[] }> {
  const notes: PeerNote[] = [];
  const started: Proc[] = [];
  const configs: LoadConfig[] = [];
  const add = (group: string, path: string, s: Started | undefined) => {
    if (!s) return;
    started.push(s.proc);
    for (const c of concurrency)
      configs.push({ group, path, concurrency: c, spec: s.spec, serverPids: () => [s.proc.pid] });
  };
  const attempt = async (peer: string, start: () => Promise<Started>): Promise<Started | undefined> => {
    try {
      return await start();
    } catch (error) {
      const note = (error as Error).message.split('\n').slice(0, 3).join(' ');
      notes.push({ peer, note });
      log(`  ${peer}: not measured: ${note}`);
      return undefined;
    }
  };
  let entries: Record<keyof typeof PEERS, string> | undefined;
  try {
    entries = ensurePeers(PEERS, log);
  } catch (error) {
    const note = `could not be installed: ${(error as Error).message.split('\n')[0]}`;
    for (const peer of Object.values(PEERS)) notes.push({ peer: peer.name, note });
  }
  const installed = (key: keyof typeof PEERS): string => {
    if (!entries) throw new Error('not installed');
    return entries[key];
  };
  try {
    add('stdio', 'mcp-proxy (ours) /servers/echo/mcp', await attempt('ours (stdio)', () => oursStdio(dir)));
    add(
      'stdio',
      `supergateway ${PEERS.supergateway.version}`,
      await attempt('supergateway', () => supergateway(installed('supergateway'))),
    );
    add(
      'stdio',
      `mcp-proxy (punkpeye) ${PEERS.mcpProxy.version}`,
      await attempt('mcp-proxy (punkpeye)', () => punkpeye(installed('mcpProxy'))),
    );
    const upstreamUrl = `${upstream.base}/mcp`;
    const ours = await attempt('ours (HTTP)', async () => {
      const proxy = await startProxy({ name: 'proxy (peers)' });
      return { proc: proxy.proc, spec: proxySpec(proxy.base, upstreamUrl) };
    });
    add('http', 'mcp-proxy (ours) POST /proxy', ours);
    add(
      'http',
      `inspector ${PEERS.inspector.version} /api/mcp/send`,
      await attempt('inspector', () => inspector(installed('inspector'), upstreamUrl, dir)),
    );
    // The upstream's CPU: the fast upstream for HTTP, the stdio server child(ren) for stdio.
    const points = await measurePoints(
      configs.map((c) => {
        const server = c.serverPids?.()[0] ?? 0;
        return { ...c, upstreamPids: c.group === 'http' ? upstream.pids : () => descendantPids(server) };
      }),
      dir,
      log,
    );
    return { points: points.map((p) => ({ ...p, group: `peers-${p.group}` })), notes };
  } finally {
    await Promise.all(started.map((p) => p.stop()));
  }
}

/** Our proxy with the stdio echo server configured as `servers.echo`. */
async function oursStdio(dir: string): Promise<Started> {
  const configFile = join(dir, 'proxy-stdio.json');
  writeFileSync(configFile, JSON.stringify({ servers: { echo: { command: NODE, args: [STDIO_ECHO] } } }));
  const proxy = await startProxy({ name: 'proxy (stdio)', configFile });
  const url = `${proxy.base}/servers/echo/mcp`;
  const sessionId = await openSession(url, { 'x-proxy-token': PROXY_TOKEN });
  const spec = directSpec(url, sessionId);
  return { proc: proxy.proc, spec: { ...spec, headers: { ...spec.headers, 'X-Proxy-Token': PROXY_TOKEN } } };
}

async function supergateway(entry: string): Promise<Started> {
  const port = await freePort();
  const proc = startPinned(
    NODE,
    [
      entry,
      '--stdio',
      `${NODE} ${STDIO_ECHO}`,
      '--outputTransport',
      'streamableHttp',
      '--stateful',
      '--port',
      String(port),
      '--logLevel',
      'none',
    ],
    { name: 'supergateway', cores: SERVER_CORES },
  );
  return sessionPeer(proc, `http://127.0.0.1:${port}/mcp`);
}

async function punkpeye(entry: string): Promise<Started> {
  const port = await freePort();
  const proc = startPinned(
    NODE,
    [entry, '--host', '127.0.0.1', '--port', String(port), '--server', 'stream', '--', NODE, STDIO_ECHO],
    { name: 'mcp-proxy (punkpeye)', cores: SERVER_CORES },
  );
  return sessionPeer(proc, `http://127.0.0.1:${port}/mcp`);
}

async function sessionPeer(proc: Proc, url: string): Promise<Started> {
  try {
    await waitUntil(
      async () => (await fetch(url, { method: 'GET' })).status > 0,
      60_000,
      `${proc.name} to listen`,
    );
    const sessionId = await openSession(url, {});
    const spec = directSpec(url, sessionId);
    await checkSession(proc.name, spec);
    return { proc, spec };
  } catch (error) {
    await proc.stop();
    throw new Error(`${(error as Error).message} ${proc.stderrTail().slice(-300)}`);
  }
}

async function checkSession(name: string, spec: RequestSpec): Promise<void> {
  const headers = Object.fromEntries(Object.entries(spec.headers).map(([k, v]) => [k.toLowerCase(), v]));
  expectAnswer(
    name,
    await post(spec.url, headers, spec.body.replace('"__ID__"', '"check-1"')),
    'Echo: bench',
  );
}

/** The Inspector's web backend, one remote session to the upstream, its event stream drained. */
async function inspector(entry: string, upstreamUrl: string, dir: string): Promise<Started> {
  const port = await freePort();
  const proc = startPinned(NODE, [entry], {
    name: 'inspector',
    cores: SERVER_CORES,
    cwd: dir,
    env: {
      CLIENT_PORT: String(port),
      HOST: '127.0.0.1',
      MCP_SANDBOX_PORT: '0',
      MCP_APP_ORIGIN_PORT: '0',
      MCP_AUTO_OPEN_ENABLED: 'false',
      MCP_INSPECTOR_API_TOKEN: INSPECTOR_TOKEN,
      MCP_INSPECTOR_SECRET_STORE: 'memory',
      MCP_STORAGE_DIR: join(dir, 'inspector-storage'),
    },
  });
  const base = `http://127.0.0.1:${port}`;
  const auth = { 'x-mcp-remote-auth': `Bearer ${INSPECTOR_TOKEN}` };
  try {
    await waitUntil(
      async () => (await fetch(`${base}/api/config`, { headers: auth })).status === 200,
      60_000,
      'the inspector to listen',
    );
    const connect = await post(`${base}/api/mcp/connect`, auth, {
      config: { type: 'streamable-http', url: upstreamUrl },
    });
    expectAnswer('inspector connect', connect, 'sessionId');
    const sessionId = (JSON.parse(connect.text) as { sessionId: string }).sessionId;
    // Answers travel on the session's event stream; keep one reader on it, as the web UI does.
    const events = await fetch(`${base}/api/mcp/events?sessionId=${sessionId}`, { headers: auth });
    void events.body?.pipeTo(new WritableStream()).catch(() => {});
    const body = JSON.stringify({ sessionId, message: { ...ECHO_CALL, id: '__ID__' } });
    const spec: RequestSpec = {
      url: `${base}/api/mcp/send`,
      headers: { 'Content-Type': 'application/json', 'x-mcp-remote-auth': `Bearer ${INSPECTOR_TOKEN}` },
      body,
      uniqueIds: true,
    };
    expectAnswer(
      'inspector send',
      await post(spec.url, auth, body.replace('"__ID__"', '"check-1"')),
      '"ok":true',
    );
    return { proc, spec };
  } catch (error) {
    await proc.stop();
    throw new Error(`${(error as Error).message} ${proc.stderrTail().slice(-300)}`);
  }
}
