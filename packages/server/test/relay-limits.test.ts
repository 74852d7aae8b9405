/**
 * Issue 19, the relaying side's bounds (review 6, relay item 3): exchanges in all, exchanges per
 * principal, and answer bytes held for callers. A request beyond any of them is told to retry
 * (503 relay_interrupted, Retry-After), never "not found": its session lives on its owner, and a
 * 404 would tell the client to drop it. Two instances in one process share a memory store; the
 * relaying one (b) runs with bounds small enough to reach.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import type { RelayLimits } from '../src/http/relay-quota.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const wideEntry = fileURLToPath(new URL('./fixtures/wide-stdio.ts', import.meta.url));
const SECOND_TOKEN = 'relay-limits-second-token-0123456789';
const THIRD_TOKEN = 'relay-limits-third-token-01234567890';
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
  dir = await mkdtemp(join(tmpdir(), 'mcpp-relay-limits-'));
  await writeFile(
    join(dir, 'proxy.json'),
    JSON.stringify({
      servers: {
        feat: { command: process.execPath, args: [featureServerEntry] },
        wide: { command: process.execPath, args: [wideEntry] },
      },
    }),
  );
});
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.abort();
  await Promise.allSettled(running.splice(0).map((proxy) => proxy.close()));
  await store?.close();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The owner `a` and the relaying instance `b` (with `limits`), sharing one store. */
async function pair(limits: Partial<RelayLimits>): Promise<{ a: RunningProxy; b: RunningProxy }> {
  store = new MemoryStore(SYSTEM_CLOCK);
  const env = {
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    PROXY_TOKENS: `${SECOND_TOKEN},${THIRD_TOKEN}`,
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
  };
  const a = await startProxy(env, { store: namespaced(store, '') });
  running.push(a);
  const b = await startProxy(env, { store: namespaced(store, ''), relayLimits: limits });
  running.push(b);
  return { a, b };
}

/** A held /mcp session of `server` opened on `owner` with `token`; its id. */
async function openSession(owner: RunningProxy, token: string, server = 'feat'): Promise<string> {
  const init = await fetch(`${owner.url}/servers/${server}/mcp`, {
    method: 'POST',
    headers: { ...HEADERS, 'x-proxy-token': token },
    body: JSON.stringify(INITIALIZE),
  });
  const text = await init.text();
  assert.equal(init.status, 200, text);
  return init.headers.get('mcp-session-id') as string;
}

/** The session's GET stream through `via`, left open (its exchange stays open): its status. */
async function openStream(via: RunningProxy, token: string, sid: string): Promise<AbortController> {
  const controller = new AbortController();
  streams.push(controller);
  const stream = await fetch(`${via.url}/servers/feat/mcp`, {
    headers: { ...HEADERS, accept: 'text/event-stream', 'x-proxy-token': token, 'mcp-session-id': sid },
    signal: controller.signal,
  });
  assert.equal(stream.status, 200, 'the relayed GET stream');
  return controller;
}

/** A call in session `sid` through `via`: its status, body and Retry-After. */
async function call(
  via: RunningProxy,
  token: string,
  sid: string,
  server: string,
  message: Record<string, unknown>,
): Promise<{ status: number; text: string; retryAfter: string | null }> {
  const answer = await fetch(`${via.url}/servers/${server}/mcp`, {
    method: 'POST',
    headers: { ...HEADERS, 'x-proxy-token': token, 'mcp-session-id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, ...message }),
  });
  return { status: answer.status, text: await answer.text(), retryAfter: answer.headers.get('retry-after') };
}

/** Asserts the caller was told to retry, never that its session is not found. */
function assertRetry(reply: { status: number; text: string; retryAfter: string | null }, what: string): void {
  assert.equal(reply.status, 503, `${what}: ${reply.text}`);
  assert.equal(
    (JSON.parse(reply.text) as { error: { data: { code: string } } }).error.data.code,
    'relay_interrupted',
  );
  assert.equal(reply.retryAfter, '1');
}

it('exchanges beyond the per-principal and the total bound are told to retry, never "not found"', {
  timeout: 30_000,
}, async () => {
  const { a, b } = await pair({ maxExchanges: 2, maxExchangesPerPrincipal: 1 });
  const first = await openSession(a, a.token);
  const second = await openSession(a, SECOND_TOKEN);
  const third = await openSession(a, THIRD_TOKEN);
  const ping = { method: 'ping' };
  // The first principal's one exchange is its GET stream: its next call waits for none to end.
  const firstStream = await openStream(b, a.token, first);
  assertRetry(await call(b, a.token, first, 'feat', ping), 'past the per-principal bound');
  // Two exchanges are open in all: a third principal's first call is past the total.
  await openStream(b, SECOND_TOKEN, second);
  assertRetry(await call(b, THIRD_TOKEN, third, 'feat', ping), 'past the total bound');
  // Once an exchange ends, the bounds let the next one through.
  firstStream.abort();
  // The relaying side hears its caller leave when the socket closes.
  await eventually(async () => (await call(b, THIRD_TOKEN, third, 'feat', ping)).status === 200, {
    what: 'a call through once an exchange ended',
  });
});

it('a JSON answer larger than the bytes the relaying side may hold is told to retry, whole or not at all', {
  timeout: 30_000,
}, async () => {
  const { a, b } = await pair({ maxHeldBytes: 64 * 1_024, partBytes: 16 * 1_024 });
  // POST /proxy answers JSON: the relaying side gathers it whole before answering.
  const opened = await postProxy(a, { server: 'wide', ...INITIALIZE });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const sid = opened.headers.get('mcp-session-id') as string;
  const wide = (chars: number) =>
    postProxy(b, {
      server: 'wide',
      mcp_session_id: sid,
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'wide', arguments: { chars } },
    });
  // 30,000 euro signs: 90 KB of text, in parts of 16 KiB, past the 64 KiB held here.
  const large = await wide(30_000);
  assert.equal(large.status, 503, JSON.stringify(large.body).slice(0, 300));
  assert.equal(large.body.error.data.code, 'relay_interrupted');
  assert.equal(large.headers.get('retry-after'), '1');
  // One within the bound arrives whole, and nothing stays held: the next one passes too.
  for (let i = 0; i < 2; i++) {
    const small = await wide(10_000);
    assert.equal(small.status, 200, JSON.stringify(small.body).slice(0, 300));
    assert.equal(small.body.result.content[0].text.length, 10_000);
  }
});
