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
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const SECRET = 'review8-shared-1-session-secret-0123456789abcdef';
const OTHER_TOKEN = 'review8-shared-1-other-principal-0123456789';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

let dir: string;
let store: MemoryStore;
const running: RunningProxy[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcpp-review8-shared-1-'));
  await writeFile(
    join(dir, 'proxy.json'),
    JSON.stringify({ servers: { feat: { command: process.execPath, args: [featureServerEntry] } } }),
  );
});
after(async () => {
  await Promise.allSettled(running.map((proxy) => proxy.close()));
  await store?.close();
  await rm(dir, { recursive: true, force: true });
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
