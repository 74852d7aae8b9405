/**
 * Issue 19, the relaying side's bounds (review 6, relay item 3): exchanges in all, exchanges per
 * principal, and answer bytes held for callers, in all and per principal (review 7, RELAY-3). A request beyond any of them is told to retry
 * (503 relay_interrupted, Retry-After), never "not found": its session lives on its owner, and a
 * 404 would tell the client to drop it. Two instances in one process share a memory store; the
 * relaying one (b) runs with bounds small enough to reach.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
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
const sockets: Socket[] = [];

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
  for (const socket of sockets.splice(0)) socket.destroy();
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

/** A POST /proxy session of the `wide` server opened on `owner` with `token`; its id. */
async function openWide(owner: RunningProxy, token: string): Promise<string> {
  const opened = await postProxy(owner, { server: 'wide', ...INITIALIZE }, { 'x-proxy-token': token });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  return opened.headers.get('mcp-session-id') as string;
}

/** A `wide` call of `chars` euro signs (3 bytes each) in session `sid` through `via`: a JSON answer. */
function callWide(via: RunningProxy, token: string, sid: string, chars: number) {
  return postProxy(
    via,
    {
      server: 'wide',
      mcp_session_id: sid,
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'wide', arguments: { chars } },
    },
    { 'x-proxy-token': token },
  );
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
  const sid = await openWide(a, a.token);
  const wide = (chars: number) => callWide(b, a.token, sid, chars);
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

it("one principal holds at most its share of the relaying side's answer bytes; another's answers pass", {
  timeout: 30_000,
}, async () => {
  // Bytes are counted as they arrive, not timed: a JSON answer is held whole until it is sent.
  const { a, b } = await pair({
    maxHeldBytes: 256 * 1_024,
    maxHeldBytesPerPrincipal: 64 * 1_024,
    partBytes: 16 * 1_024,
  });
  const mine = await openWide(a, a.token);
  const theirs = await openWide(a, SECOND_TOKEN);
  // 30,000 euro signs (90 KB): within the 256 KiB held in all, past one principal's 64 KiB.
  const large = await callWide(b, a.token, mine, 30_000);
  assert.equal(large.status, 503, JSON.stringify(large.body).slice(0, 300));
  assert.equal(large.body.error.data.code, 'relay_interrupted');
  // Within the share: the first principal's and the other's answers arrive whole.
  for (const [token, sid] of [
    [a.token, mine],
    [SECOND_TOKEN, theirs],
  ] as const) {
    const small = await callWide(b, token, sid, 20_000);
    assert.equal(small.status, 200, JSON.stringify(small.body).slice(0, 300));
    assert.equal(small.body.result.content[0].text.length, 20_000);
  }
});

/**
 * A POST /proxy call through `via` on a raw connection: resolves once the answer's first bytes
 * arrived, with the socket paused there (the caller stops reading) and a function that reads
 * the rest and resolves with the bytes read in all.
 */
async function callWideUnread(
  via: RunningProxy,
  token: string,
  sid: string,
  chars: number,
): Promise<{ head: string; readRest: () => Promise<number> }> {
  const body = JSON.stringify({
    server: 'wide',
    mcp_session_id: sid,
    jsonrpc: '2.0',
    id: 3,
    method: 'tools/call',
    params: { name: 'wide', arguments: { chars } },
  });
  const { port } = new URL(via.url);
  const socket = connect(Number(port), '127.0.0.1');
  sockets.push(socket);
  socket.write(
    `POST /proxy HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-proxy-token: ${token}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  const first = await new Promise<Buffer>((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      resolve(chunk);
    });
    socket.once('error', reject);
  });
  const readRest = () =>
    new Promise<number>((resolve, reject) => {
      let bytes = first.length;
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      socket.once('end', () => resolve(bytes));
      socket.once('error', reject);
      socket.resume();
    });
  return { head: first.subarray(0, 200).toString('latin1'), readRest };
}

it("an answer the caller has not read yet still counts against its principal's exchanges and bytes", {
  timeout: 60_000,
}, async () => {
  // Review 7, RELAY-4. 3,000,000 euro signs: a 9 MB JSON answer, more than the loopback socket
  // buffers take from a caller that does not read (counted in bytes, not timed).
  const { a, b } = await pair({ maxExchangesPerPrincipal: 1 });
  const sid = await openWide(a, a.token);
  const unread = await callWideUnread(b, a.token, sid, 3_000_000);
  // Its head is out: the relaying side has the whole answer and handed it to the response.
  assert.match(unread.head, /^HTTP\/1\.1 200 /);
  // While the caller does not read, the exchange (and its 9 MB) is still held for it: the
  // principal's next exchange is past its bound.
  assertRetry(
    await (async () => {
      const reply = await callWide(b, a.token, sid, 10);
      return {
        status: reply.status,
        text: JSON.stringify(reply.body),
        retryAfter: reply.headers.get('retry-after'),
      };
    })(),
    'while the first answer is unread',
  );
  // Read, the answer gives its exchange back.
  assert.ok((await unread.readRest()) > 9_000_000, 'the whole answer arrives');
  await eventually(async () => (await callWide(b, a.token, sid, 10)).status === 200, {
    what: 'the next call once the first answer was read',
  });
});
