/**
 * Issue 19, the relay between instances under trouble (the attacker review of the scale-out
 * work): a relayed caller never hangs and is never told "not found" for a session that exists,
 * whatever the owner gives up or the store loses; nothing of the caller's credential crosses the
 * store. Two instances in one process sharing a memory store; each instance sees the store
 * through a view a test can make slow, deaf or forgetful.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { loadConfig } from '../src/config/config.ts';
import { type RelayBox, relayBox } from '../src/http/relay-box.ts';
import { decodeRelayMessage } from '../src/http/relay-wire.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { type MissedListener, namespaced, type Store } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { startEverything } from './helpers/everything.ts';
import { postProxy, type Reply, type RunningProxy, startProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
/** Another principal's token. */
const SECOND_TOKEN = 'relay-robust-second-token-0123456789';
const OPEN = {
  server: 'feat',
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};
const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

/** What a test may do to one instance's view of the shared store. */
interface Tamper {
  /** Before each publish (may delay it); returns false to drop it silently. */
  publish?: (channel: string, message: string) => boolean | Promise<boolean>;
  /** Before each set; may throw (a failed write). */
  set?: (key: string) => void;
  /** Before each get (may delay it, or throw). */
  get?: (key: string) => void | Promise<void>;
  /** Before each setIfAbsent; may throw. */
  setIfAbsent?: (key: string) => void;
  /** Hears each `missed` listener registered. */
  missed?: (channel: string, listener: MissedListener) => void;
}

/** Relay messages one view published: `{ channel, message }` parsed. */
type Published = { channel: string; k: string; x: string; text: string };

let dir: string;
let store: MemoryStore;
const running: RunningProxy[] = [];

/** A relay message's kind and exchange, when it travels in clear (sealed: neither). */
function parseRelayed(channel: string, message: string): { k: string; x: string } {
  return decodeRelayMessage(channel, message, undefined)?.message ?? { k: 'sealed', x: '' };
}

/** A view of the shared store, tampered with as `tamper` says, that records what it publishes. */
function view(tamper: Tamper = {}, published: Published[] = []): Store {
  const shared = namespaced(store, '');
  return {
    ...shared,
    publish: async (channel, message) => {
      if (tamper.publish && !(await tamper.publish(channel, message))) return;
      const parsed = parseRelayed(channel, message);
      published.push({ channel, k: parsed.k, x: parsed.x, text: message });
      return shared.publish(channel, message);
    },
    set: async (key, value, ttlMs) => {
      tamper.set?.(key);
      return shared.set(key, value, ttlMs);
    },
    get: async (key) => {
      await tamper.get?.(key);
      return shared.get(key);
    },
    setIfAbsent: async (key, value, ttlMs) => {
      tamper.setIfAbsent?.(key);
      return shared.setIfAbsent(key, value, ttlMs);
    },
    subscribe: (channel, listener, missed) => {
      if (missed) tamper.missed?.(channel, missed);
      return shared.subscribe(channel, listener, missed);
    },
  };
}

async function instance(storeView: Store, env: Record<string, string> = {}): Promise<RunningProxy> {
  const proxy = await startProxy(
    {
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      PROXY_TOKENS: SECOND_TOKEN,
      MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      ...env,
    },
    { store: storeView },
  );
  running.push(proxy);
  return proxy;
}

/** A held POST /proxy session opened on `owner`. */
async function openSession(owner: Pick<RunningProxy, 'url' | 'token'>): Promise<string> {
  const opened = await postProxy(owner, OPEN);
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  return opened.headers.get('mcp-session-id') as string;
}

/** A call of the fixture's `slow` tool in session `sid`, through `via`; settles with its reply. */
function slowCall(via: Pick<RunningProxy, 'url' | 'token'>, sid: string, ms: number): Promise<Reply> {
  return postProxy(via, {
    server: 'feat',
    mcp_session_id: sid,
    jsonrpc: '2.0',
    id: 2,
    method: 'tools/call',
    params: { name: 'slow', arguments: { ms } },
  });
}

function ping(via: Pick<RunningProxy, 'url' | 'token'>, sid: string): Promise<Reply> {
  return postProxy(via, { server: 'feat', mcp_session_id: sid, jsonrpc: '2.0', id: 3, method: 'ping' });
}

/** Asserts the caller was told to retry (the session exists), not that it is not found. */
function assertInterrupted(reply: Reply): void {
  assert.equal(reply.status, 503, JSON.stringify(reply.body));
  assert.equal(reply.body.error.data.code, 'relay_interrupted');
  assert.equal(reply.headers.get('retry-after'), '1');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcpp-relay-robust-'));
  await writeFile(
    join(dir, 'proxy.json'),
    JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServerEntry] } } }),
  );
});
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((proxy) => proxy.close()));
  await store?.close();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("the owner's subscription dropping ends a relayed call with a retry, never a hang", {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const missed: MissedListener[] = [];
  const ownerPublished: Published[] = [];
  const a = await instance(
    view(
      { missed: (channel, listener) => channel.startsWith('relay:') && missed.push(listener) },
      ownerPublished,
    ),
  );
  const b = await instance(view());
  const sid = await openSession(a);
  const started = performance.now();
  const call = slowCall(b, sid, 5_000);
  // The owner runs it (it has acknowledged it).
  await eventually(() => ownerPublished.some((m) => m.k === 'ack'), { what: "the owner's ack" });
  assert.ok(missed.length > 0);
  for (const listener of missed) listener(0);
  const reply = await call;
  assertInterrupted(reply);
  assert.ok(performance.now() - started < 4_000, 'told before the call would have answered');
  // The session lives on: the retry works.
  assert.equal((await ping(b, sid)).status, 200);
});

it('an owner that takes the relaying instance for gone says so: its caller is told to retry', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  let heartbeatFails = false;
  const ownerPublished: Published[] = [];
  const a = await instance(view({}, ownerPublished));
  const b = await instance(
    view({
      set: (key) => {
        if (heartbeatFails && key.startsWith('instances:alive:')) throw new Error('write failed');
      },
    }),
  );
  const sid = await openSession(a);
  const started = performance.now();
  const call = slowCall(b, sid, 12_000);
  await eventually(() => ownerPublished.some((m) => m.k === 'ack'), { what: "the owner's ack" });
  // b's heartbeat key expires (5 s): a gives the exchange up.
  heartbeatFails = true;
  const reply = await call;
  heartbeatFails = false;
  assertInterrupted(reply);
  assert.ok(performance.now() - started < 11_000, 'told before the call would have answered');
});

it('an owner that goes quiet mid-exchange (its messages lost) ends it after the liveness bound', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  let deaf = false;
  const ownerPublished: Published[] = [];
  const a = await instance(view({ publish: () => !deaf }, ownerPublished));
  const b = await instance(view());
  const sid = await openSession(a);
  const started = performance.now();
  const call = slowCall(b, sid, 25_000);
  await eventually(() => ownerPublished.some((m) => m.k === 'ack'), { what: "the owner's ack" });
  // Everything the owner publishes from now on is lost, its heartbeat stays current.
  deaf = true;
  const reply = await call;
  deaf = false;
  assertInterrupted(reply);
  assert.ok(performance.now() - started < 15_000, 'ended within the liveness bound');
});

it("one late answer from a healthy owner is a retry for that call, not 'not found' for its sessions", {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  let slowPublish = false;
  const a = await instance(
    view({
      publish: async () => {
        // A publish held up beyond the ack timeout (a GC pause, a busy store).
        if (slowPublish) await new Promise((resolve) => setTimeout(resolve, 2_500));
        return true;
      },
    }),
  );
  const b = await instance(view());
  const mine = await openSession(a);
  const theirs = await openSession({ url: a.url, token: SECOND_TOKEN });
  assert.equal((await ping({ url: b.url, token: SECOND_TOKEN }, theirs)).status, 200);
  slowPublish = true;
  const late = await ping(b, mine);
  slowPublish = false;
  assertInterrupted(late);
  // Every session on the owner still answers through the other instance at once.
  assert.equal((await ping({ url: b.url, token: SECOND_TOKEN }, theirs)).status, 200);
  assert.equal((await ping(b, mine)).status, 200);
});

it('a caller leaving during the owner lookup is not relayed: the session keeps its one GET stream', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  let slowLookups = false;
  let lookingUp = false;
  let lookedUp = false;
  const relayed: Published[] = [];
  const a = await instance(view());
  const b = await instance(
    view(
      {
        get: async (key) => {
          if (!slowLookups) return;
          // A busy or far store: the lookup outlasts the caller.
          if (key.startsWith('instances:session:')) {
            lookingUp = true;
            await new Promise((resolve) => setTimeout(resolve, 300));
          }
          if (key.startsWith('instances:alive:')) lookedUp = true;
        },
      },
      relayed,
    ),
  );
  const init = await fetch(`${a.url}/servers/feat/mcp`, {
    method: 'POST',
    headers: { ...MCP_HEADERS, 'x-proxy-token': a.token },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: OPEN.params }),
  });
  await init.text();
  const sid = init.headers.get('mcp-session-id') as string;
  slowLookups = true;
  const get = httpRequest({
    host: '127.0.0.1',
    port: new URL(b.url).port,
    path: '/servers/feat/mcp',
    method: 'GET',
    agent: false,
    headers: { ...MCP_HEADERS, accept: 'text/event-stream', 'x-proxy-token': b.token, 'mcp-session-id': sid },
  });
  get.on('error', () => {});
  get.end();
  // The caller leaves while b looks the owner up.
  await eventually(() => lookingUp, { what: "b's owner lookup started" });
  get.destroy();
  await eventually(() => lookedUp, { what: "b's owner lookup" });
  // The relay decision follows the lookup in the same turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  slowLookups = false;
  assert.deepEqual(
    relayed.filter((m) => m.k === 'open'),
    [],
    'nothing relayed for a caller that has left',
  );
  // The session's one standalone stream is free for its real client.
  const own = await fetch(`${a.url}/servers/feat/mcp`, {
    headers: { ...MCP_HEADERS, accept: 'text/event-stream', 'x-proxy-token': a.token, 'mcp-session-id': sid },
  });
  assert.equal(own.status, 200);
  await own.body?.cancel();
});

/** main.ts's SIGTERM path: unready, quiet within `boundMs` (with the default idle wait), close. */
async function drain(proxy: RunningProxy, boundMs: number): Promise<void> {
  proxy.app.drain.unready();
  await proxy.app.drain.quiet({ boundMs, idleMs: loadConfig({}).drainIdleMs });
  await proxy.app.close();
}

it('a drain finishes the calls relayed in from other instances, as it does its own', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const ownerPublished: Published[] = [];
  const a = await instance(view({}, ownerPublished));
  const b = await instance(view());
  const sid = await openSession(a);
  const call = slowCall(b, sid, 1_500);
  await eventually(() => ownerPublished.some((m) => m.k === 'ack'), { what: "the owner's ack" });
  await drain(a, 10_000);
  const reply = await call;
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal(reply.body.result.content[0].text, 'waited 1500 ms');
});

it('a relayed call a drain cannot wait for is answered "retry", not "not found"', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const ownerPublished: Published[] = [];
  const a = await instance(view({}, ownerPublished));
  const b = await instance(view());
  const sid = await openSession(a);
  const call = slowCall(b, sid, 10_000);
  await eventually(() => ownerPublished.some((m) => m.k === 'ack'), { what: "the owner's ack" });
  await drain(a, 300);
  assertInterrupted(await call);
});

/** A raw POST (fetch would drop a `#…` part of the path), answered with its status. */
function rawPost(url: string, path: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(url);
    const sent = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers },
      (answer) => {
        answer.resume();
        answer.once('end', () => resolve(answer.statusCode ?? 0));
      },
    );
    sent.once('error', reject);
    sent.end(body);
  });
}

it('a query credential never crosses the store, however its name is spelled', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const relayed: Published[] = [];
  const env = { ALLOW_QUERY_TOKEN: 'true' };
  const a = await instance(view(), env);
  const b = await instance(view({}, relayed), env);
  const init = await fetch(`${a.url}/servers/feat/mcp`, {
    method: 'POST',
    headers: { ...MCP_HEADERS, 'x-proxy-token': a.token },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: OPEN.params }),
  });
  await init.text();
  const sid = init.headers.get('mcp-session-id') as string;
  const headers = { ...MCP_HEADERS, 'mcp-session-id': sid };
  const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' });
  for (const query of [
    `?proxy_token=${a.token}`,
    `?keep=1&proxy%5Ftoken=${a.token}`,
    `?proxy%5ftoken=${a.token}&keep=1`,
    `#proxy_token=${a.token}`,
  ]) {
    const status = await rawPost(b.url, `/servers/feat/mcp${query}`, headers, body);
    assert.equal(status, 200, query);
  }
  const opens = relayed.filter((m) => m.k === 'open');
  assert.equal(opens.length, 4, 'each was relayed');
  for (const open of opens)
    assert.ok(!open.text.includes(a.token), `the credential crossed the store: ${open.text}`);
  // The caller's other parameters still reach the owner.
  assert.ok(
    opens.some((open) => (JSON.parse(open.text) as { url: string }).url === '/servers/feat/mcp?keep=1'),
  );
});

it('a store that lost its keys (restarted empty) has the claims written again within heartbeats', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const a = await instance(view());
  const b = await instance(view());
  const sid = await openSession(a);
  assert.equal((await ping(b, sid)).status, 200);
  const owner = await store.get(`instances:session:${sid}`);
  assert.ok(owner !== undefined);
  // Redis restarted without persistence: every key is gone (a's alive key, its claims).
  await store.delete(`instances:session:${sid}`);
  await store.delete(`instances:alive:${owner}`);
  await eventually(async () => (await store.get(`instances:session:${sid}`)) === owner, {
    timeoutMs: 6_000,
    what: 'the claim written again',
  });
  assert.equal((await ping(b, sid)).status, 200);
});

it("a subscription that missed messages has the instance's claims written again", {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const missed: MissedListener[] = [];
  const a = await instance(
    view({ missed: (channel, listener) => channel.startsWith('relay:') && missed.push(listener) }),
  );
  const b = await instance(view());
  const sid = await openSession(a);
  const owner = await store.get(`instances:session:${sid}`);
  await store.delete(`instances:session:${sid}`);
  for (const listener of missed) listener(0);
  await eventually(async () => (await store.get(`instances:session:${sid}`)) === owner, {
    timeoutMs: 6_000,
    what: 'the claim written again',
  });
  assert.equal((await ping(b, sid)).status, 200);
});

/** Whether a pass-through session opened through `a` to `upstreamUrl` answers through `b`. */
async function sealedIdCrosses(a: RunningProxy, b: RunningProxy, upstreamUrl: string): Promise<boolean> {
  const headers = { ...MCP_HEADERS, 'x-mcp-server-url': upstreamUrl };
  const init = await fetch(`${a.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, 'x-proxy-token': a.token },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: OPEN.params }),
  });
  await init.text();
  const sid = init.headers.get('mcp-session-id') as string;
  assert.match(sid, /^mcpp2\./);
  const onB = await fetch(`${b.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, 'x-proxy-token': b.token, 'mcp-session-id': sid },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  });
  await onB.text();
  return onB.status === 200;
}

it('the shared sealing key, lost by the store, is written back before a new instance makes its own', {
  timeout: 20_000,
}, async (t) => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const upstream = await startEverything('streamableHttp');
  t.after(() => upstream.stop());
  const a = await instance(view());
  const key = await store.get('sessions:sealer-key');
  assert.ok(key !== undefined);
  // Redis restarted without persistence.
  await store.delete('sessions:sealer-key');
  await eventually(async () => (await store.get('sessions:sealer-key')) === key, {
    timeoutMs: 6_000,
    what: 'the key written back',
  });
  const b = await instance(view());
  assert.ok(await sealedIdCrosses(a, b, upstream.url));
});

it('an instance that started while the store did not answer is not ready until it shares the key', {
  timeout: 20_000,
}, async (t) => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const upstream = await startEverything('streamableHttp');
  t.after(() => upstream.stop());
  const a = await instance(view());
  let down = true;
  const failing = (key: string) => {
    if (down && key === 'sessions:sealer-key') throw new Error('store unreachable');
  };
  const b = await instance(view({ get: failing, setIfAbsent: failing }));
  const ready = await fetch(`${b.url}/ready`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as { status: string }).status, 'starting');
  down = false;
  await eventually(async () => (await fetch(`${b.url}/ready`)).status === 200, {
    timeoutMs: 8_000,
    what: 'b ready',
  });
  assert.ok(await sealedIdCrosses(a, b, upstream.url));
  assert.ok(await sealedIdCrosses(b, a, upstream.url));
});

it('with SESSION_SECRET, relay messages are sealed: nothing in clear, forged or replayed ones unheard', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const env = { SESSION_SECRET: 'relay-robust-session-secret-0123456789abcdef' };
  const ownerPublished: Published[] = [];
  const relayed: Published[] = [];
  const a = await instance(view({}, ownerPublished), env);
  const b = await instance(view({}, relayed), env);
  const sid = await openSession(a);
  const upstreamSecret = 'upstream-secret-never-in-clear-42';
  const call = await postProxy(b, {
    server: 'feat',
    mcp_session_id: sid,
    mcp_token: upstreamSecret,
    jsonrpc: '2.0',
    id: 3,
    method: 'ping',
  });
  assert.equal(call.status, 200, JSON.stringify(call.body));
  const opens = relayed.filter((m) => m.channel.startsWith('relay:'));
  assert.ok(opens.length > 0);
  for (const message of [...opens, ...ownerPublished])
    assert.ok(
      !message.text.includes(upstreamSecret) && !message.text.includes('principal'),
      `in clear: ${message.text}`,
    );
  // Someone who can publish to the store forges an open, then replays a sealed one.
  const owner = (await store.get(`instances:session:${sid}`)) as string;
  const heardByForger: string[] = [];
  const stop = await store.subscribe('relay:to:forger', (message) => heardByForger.push(message));
  await store.publish(
    `relay:to:${owner}`,
    JSON.stringify({
      k: 'open',
      x: 'forged-exchange',
      from: 'forger',
      method: 'POST',
      url: '/proxy',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ server: 'feat', mcp_session_id: sid, jsonrpc: '2.0', id: 9, method: 'ping' }),
      principal: { id: 'x', principalKey: 'static:x', subject: 'token:x', auth: 'static', grants: {} },
    }),
  );
  const answeredBefore = ownerPublished.length;
  // What the instances sealed opens with the secret (the test knows it).
  const box = relayBox([env.SESSION_SECRET]) as RelayBox;
  const opened = (m: Published) => decodeRelayMessage(m.channel.slice('relay:'.length), m.text, box);
  const exchangeOf = (m: Published) => opened(m)?.message.x;
  const sealedOpen = opens[0] as Published;
  await store.publish(sealedOpen.channel, sealedOpen.text);
  // Two exchanges after them, each run whole on the owner.
  assert.equal((await ping(b, sid)).status, 200);
  assert.equal((await ping(b, sid)).status, 200);
  await stop();
  assert.deepEqual(heardByForger, [], 'the forged open was run');
  const replayed = ownerPublished
    .slice(answeredBefore)
    .filter((m) => exchangeOf(m) === exchangeOf(sealedOpen));
  assert.ok(exchangeOf(sealedOpen) !== undefined);
  assert.deepEqual(replayed.map(opened), [], 'the replayed open was run again');
});

it('review11 (7): an open whose minted principal names another minter than its key, or no minter id, is refused', {
  timeout: 20_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const a = await instance(view());
  const sid = await openSession(a);
  const owner = (await store.get(`instances:session:${sid}`)) as string;
  const heard: Array<{ k: string; x: string }> = [];
  const stop = await store.subscribe('relay:to:forger', (message) =>
    heard.push(parseRelayed('relay:to:forger', message)),
  );
  const minter = 'a'.repeat(16);
  const forge = (x: string, principalMinter: string) =>
    store.publish(
      `relay:to:${owner}`,
      JSON.stringify({
        k: 'open',
        x,
        n: 0,
        from: 'forger',
        method: 'POST',
        url: '/proxy',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ server: 'feat', jsonrpc: '2.0', id: 9, method: 'ping' }),
        principal: {
          id: 'x',
          principalKey: `minted:${minter}:alice`,
          subject: 'alice',
          auth: 'minted',
          grants: {},
          minter: principalMinter,
          credentialId: 'AAAAAAAAAAAAAAAAAAAAAA',
        },
      }),
    );
  await forge('minter-matches', minter);
  await forge('minter-differs', 'b'.repeat(16));
  await forge('minter-not-an-id', 'cli');
  const kindsOf = (x: string) => heard.filter((m) => m.x === x).map((m) => m.k);
  await eventually(
    () => ['minter-matches', 'minter-differs', 'minter-not-an-id'].every((x) => kindsOf(x).length > 0),
    {
      timeoutMs: 8_000,
      what: `an answer to each open (heard ${JSON.stringify(heard)})`,
    },
  );
  await stop();
  // Run (and answered: that minter is not configured here, so 401), not refused unrun.
  assert.deepEqual(kindsOf('minter-matches'), ['part'], 'the well-formed open was run');
  assert.deepEqual(kindsOf('minter-differs'), ['fail']);
  assert.deepEqual(kindsOf('minter-not-an-id'), ['fail']);
});
