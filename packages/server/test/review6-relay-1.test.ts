/**
 * Review 7 of the relay, finding 1: the owner's bound on exchanges it runs for other instances
 * (`maxExchanges`, 10,000) is one pool for every principal. The per-principal bound (1,000) is
 * kept only by each relaying instance for what it relays out, so one principal reaching its
 * sessions through ten relaying instances (or here, scaled down, two) fills the owner's pool
 * with long-lived exchanges (GET streams), and every other principal's call relayed to that
 * owner is refused (`fail`, 503 relay_interrupted) for as long as they stay open.
 *
 * Scaled bounds: the owner `a` runs 4 exchanges at most, 2 per principal; the relaying
 * instances `b` and `c` let a principal relay 2 each (the defaults' ratio is 10,000 : 1,000).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const OTHER_TOKEN = 'review7-relay-1-other-principal-0123456789';
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

let dir: string;
let store: MemoryStore;
const running: RunningProxy[] = [];
const streams: AbortController[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcpp-review7-relay-1-'));
  await writeFile(
    join(dir, 'proxy.json'),
    JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServerEntry] } } }),
  );
});
after(async () => {
  for (const stream of streams) stream.abort();
  await Promise.allSettled(running.map((proxy) => proxy.close()));
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

async function openSession(owner: RunningProxy, token: string): Promise<string> {
  const init = await fetch(`${owner.url}/servers/feat/mcp`, {
    method: 'POST',
    headers: { ...HEADERS, 'x-proxy-token': token },
    body: JSON.stringify(INITIALIZE),
  });
  const text = await init.text();
  assert.equal(init.status, 200, text);
  const sid = init.headers.get('mcp-session-id') as string;
  const done = await fetch(`${owner.url}/servers/feat/mcp`, {
    method: 'POST',
    headers: { ...HEADERS, 'x-proxy-token': token, 'mcp-session-id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await done.text();
  return sid;
}

/** The session's GET stream through `via`, left open; its status (the body is never read). */
async function openStream(via: RunningProxy, token: string, sid: string): Promise<number> {
  const controller = new AbortController();
  streams.push(controller);
  const stream = await fetch(`${via.url}/servers/feat/mcp`, {
    headers: { ...HEADERS, accept: 'text/event-stream', 'x-proxy-token': token, 'mcp-session-id': sid },
    signal: controller.signal,
  });
  return stream.status;
}

it("one principal's exchanges relayed through several instances do not shut the owner to other principals", {
  timeout: 60_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const env = {
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    PROXY_TOKENS: OTHER_TOKEN,
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
  };
  const a = await startProxy(env, {
    store: namespaced(store, ''),
    relayLimits: { maxExchanges: 4, maxExchangesPerPrincipal: 2 },
  });
  running.push(a);
  const relaying = { store: namespaced(store, ''), relayLimits: { maxExchangesPerPrincipal: 2 } };
  const b = await startProxy(env, relaying);
  running.push(b);
  const c = await startProxy(env, relaying);
  running.push(c);
  // The first principal holds four sessions on a, the other principal one.
  const mine = await Promise.all([0, 1, 2, 3].map(() => openSession(a, a.token)));
  const theirs = await openSession(a, OTHER_TOKEN);
  // The first principal opens each session's GET stream, two through b and two through c: each
  // relaying instance sees only its own two, within its per-principal bound.
  const statuses = [
    await openStream(b, a.token, mine[0] as string),
    await openStream(b, a.token, mine[1] as string),
    await openStream(c, a.token, mine[2] as string),
    await openStream(c, a.token, mine[3] as string),
  ];
  // (Whether the owner refuses the first principal's extra streams is its own business.)
  for (const status of statuses) assert.ok(status === 200 || status === 503, `a stream: ${status}`);
  // The other principal's first call, relayed through b to a.
  const ping = await fetch(`${b.url}/servers/feat/mcp`, {
    method: 'POST',
    headers: { ...HEADERS, 'x-proxy-token': OTHER_TOKEN, 'mcp-session-id': theirs },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  });
  const text = await ping.text();
  assert.equal(ping.status, 200, `the other principal's call: ${text}`);
});
