/**
 * Review 7 of the relay, finding 2: while the shared Redis is down (restarting, a network blip),
 * a request for a session held by another instance is answered 404 `session_not_found` by the
 * instance it lands on: the relay's owner look-up fails and the request goes on locally
 * (http/relay.ts #route). The session still exists on its owner; a 404 is MCP's signal to drop
 * it and initialize again, so a Redis restart of a few seconds makes every client whose request
 * lands on another instance lose its session (docs/architecture.md: "never told 'not found' for
 * a session that exists"). The caller should be told to retry (503 relay_interrupted). Afterwards
 * (the same Redis back, empty), relayed requests resume.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventually } from './helpers/eventually.ts';
import { freePort, waitForPort } from './helpers/net.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

let dir: string;
let port: number;
let redis: ChildProcess | undefined;
const running: RunningProxy[] = [];

/** A real redis-server on `port` (the same port each time: a restart). */
async function startRedisOn(): Promise<void> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  redis = child;
  await waitForPort(port);
}

async function stopRedis(): Promise<void> {
  const child = redis;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcpp-review7-relay-2-'));
  await writeFile(
    join(dir, 'proxy.json'),
    JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServerEntry] } } }),
  );
  port = await freePort();
  await startRedisOn();
});
after(async () => {
  await Promise.allSettled(running.map((proxy) => proxy.close()));
  await stopRedis();
  await rm(dir, { recursive: true, force: true });
});

it('a relayed session is never "not found" while Redis restarts, and relays resume after', {
  timeout: 90_000,
}, async () => {
  const env = {
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    REDIS_URL: `redis://127.0.0.1:${port}`,
    SESSION_SECRET: 'review7-relay-2-session-secret-0123456789abcdef',
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
  };
  const a = await startProxy(env);
  running.push(a);
  const b = await startProxy(env);
  running.push(b);
  const init = await fetch(`${a.url}/servers/feat/mcp`, {
    method: 'POST',
    headers: { ...HEADERS, 'x-proxy-token': a.token },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    }),
  });
  assert.equal(init.status, 200, await init.text());
  const sid = init.headers.get('mcp-session-id') as string;
  const ping = async (id: number) => {
    const answer = await fetch(`${b.url}/servers/feat/mcp`, {
      method: 'POST',
      headers: { ...HEADERS, 'x-proxy-token': b.token, 'mcp-session-id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }),
    });
    return { status: answer.status, text: await answer.text() };
  };
  await eventually(async () => (await ping(2)).status === 200, { what: 'the relay to a' });
  // Redis goes away (a restart, a blip): the session is still held by a.
  await stopRedis();
  const during = await ping(3);
  assert.notEqual(during.status, 404, `a relayed call while Redis is down: ${during.text}`);
  assert.equal(during.status, 503, during.text);
  assert.match(during.text, /relay_interrupted/);
  // Redis is back (empty): a's claim is written again and relays resume.
  await startRedisOn();
  await eventually(async () => (await ping(4)).status === 200, {
    timeoutMs: 30_000,
    what: 'a relayed call once Redis is back',
  });
});
