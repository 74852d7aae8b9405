/**
 * What one principal may take of an owner instance's relay: its share of the exchanges run for
 * other instances, and of the memory of sealed opens kept against replay.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

/** One configuration for every instance of this file: the feature server as `feat`. */
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcpp-relay-bounds-'));
  await writeFile(
    join(dir, 'proxy.json'),
    JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServerEntry] } } }),
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

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
describe('the exchanges an owner runs for other instances, per principal', () => {
  const OTHER_TOKEN = 'review7-relay-1-other-principal-0123456789';
  const HEADERS = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  };

  let store: MemoryStore;
  const running: RunningProxy[] = [];
  const streams: AbortController[] = [];

  after(async () => {
    for (const stream of streams) stream.abort();
    await Promise.allSettled(running.map((proxy) => proxy.close()));
    await store?.close();
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
});

/**
 * Review 8 of shared state, finding 1: with SESSION_SECRET, an owner remembers every sealed
 * `open` it hears (against replay) in one memory for every principal (`maxRecentOpens`, 120,000
 * for 60 s), and refuses every new open while it is full of fresh ones (review 7, RELAY-6). The
 * memory is filled by whoever relays the most: one principal calling its own session through
 * another instance fills it (each call is an open, even one the owner then refuses for that
 * principal's quota), and then every other principal's relayed call to that owner is refused
 * (503 relay_interrupted) until the entries age out, a cross-principal denial of service that
 * the per-principal bounds of RELAY-1 and RELAY-3 were meant to rule out.
 *
 * Scaled down: the owner `a` remembers 8 opens (the default's 120,000 is 2,000 opens a second,
 * which a fleet's callers reach with rate limits raised or many tokens of one tenant).
 */
describe("the owner's replay memory, per principal", () => {
  const SECRET = 'review8-shared-1-session-secret-0123456789abcdef';
  const OTHER_TOKEN = 'review8-shared-1-other-principal-0123456789';

  let store: MemoryStore;
  const running: RunningProxy[] = [];

  after(async () => {
    await Promise.allSettled(running.map((proxy) => proxy.close()));
    await store?.close();
  });

  it("one principal's relayed calls do not fill the owner's replay memory against other principals", {
    timeout: 60_000,
  }, async () => {
    store = new MemoryStore(SYSTEM_CLOCK);
    const env = {
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SESSION_SECRET: SECRET,
      PROXY_TOKENS: `${TEST_TOKEN},${OTHER_TOKEN}`,
      MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
    };
    const a = await startProxy(env, { store: namespaced(store, ''), relayLimits: { maxRelaySenders: 1 } });
    running.push(a);
    const b = await startProxy(env, { store: namespaced(store, '') });
    running.push(b);
    const open = async (token: string) => {
      const opened = await postProxy({ url: a.url, token }, { server: 'feat', ...INITIALIZE });
      assert.equal(opened.status, 200, JSON.stringify(opened.body));
      return opened.headers.get('mcp-session-id') as string;
    };
    const ping = async (token: string, sid: string, id: number) => {
      const answer = await postProxy(
        { url: b.url, token },
        { server: 'feat', mcp_session_id: sid, jsonrpc: '2.0', id, method: 'ping' },
      );
      return { status: answer.status, text: JSON.stringify(answer.body) };
    };
    const mine = await open(TEST_TOKEN);
    const theirs = await open(OTHER_TOKEN);
    // The first principal calls its own session through b, as often as the owner remembers opens.
    for (let id = 2; id < 10; id++) await ping(TEST_TOKEN, mine, id);
    // The other principal's first call, relayed through b to a.
    const other = await ping(OTHER_TOKEN, theirs, 100);
    assert.equal(other.status, 200, `the other principal's call: ${other.text}`);
  });
});
