/**
 * Replayed relay messages (review 6, relay finding 1): with SESSION_SECRET, a sealed relay
 * message is refused when it is forged or stale, and a replayed `open` is not run again; every
 * other kind (`part`, `ack`, `fail`) must not be heard again either when someone who can publish
 * to the store replays it within its 30 s freshness. Before each message carried its number in
 * the exchange, a replayed `part` wrote its bytes into the caller's answer a second time: the
 * caller saw an event the upstream sent once (here a progress notification) twice.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { type RelayBox, relayBox } from '../src/http/relay-box.ts';
import { decodeRelayMessage } from '../src/http/relay-wire.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced, type Store } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const featureServerEntry = fileURLToPath(new URL('./fixtures/feature-server.ts', import.meta.url));
const SECRET = 'review6-relay-session-secret-0123456789abcdef';
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': '2025-06-18',
};

let dir: string;
let store: MemoryStore;
const running: RunningProxy[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcpp-relay-replay-'));
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

/** A view of the shared store that records what it publishes (sealed text, by channel). */
function recordingView(published: Array<{ channel: string; text: string }>): Store {
  const shared = namespaced(store, '');
  return {
    ...shared,
    publish: async (channel, message) => {
      published.push({ channel, text: message });
      return shared.publish(channel, message);
    },
  };
}

it('a replayed sealed part is not written into the caller answer a second time', {
  timeout: 30_000,
}, async () => {
  store = new MemoryStore(SYSTEM_CLOCK);
  const ownerPublished: Array<{ channel: string; text: string }> = [];
  const env = {
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    SESSION_SECRET: SECRET,
    MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
  };
  const a = await startProxy(env, { store: recordingView(ownerPublished) });
  running.push(a);
  const b = await startProxy(env, { store: namespaced(store, '') });
  running.push(b);
  // A /mcp session held by a.
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
  assert.equal(init.status, 200);
  await init.text();
  const sid = init.headers.get('mcp-session-id') as string;
  assert.ok(sid);
  const session = { ...HEADERS, 'x-proxy-token': b.token, 'mcp-session-id': sid };
  await (
    await fetch(`${b.url}/servers/feat/mcp`, {
      method: 'POST',
      headers: session,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    })
  ).text();
  // A call with progress, through b: its answer stream is relayed from a in parts.
  const box = relayBox([SECRET]) as RelayBox;
  const opened = (m: { channel: string; text: string }) => {
    const heard = decodeRelayMessage(m.channel.slice('relay:'.length), m.text, box);
    return { ...(heard?.message as { k?: string; end?: true } | undefined), data: heard?.data };
  };
  const before = ownerPublished.length;
  const answer = await fetch(`${b.url}/servers/feat/mcp`, {
    method: 'POST',
    headers: session,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'progress', arguments: { steps: 4, intervalMs: 600 }, _meta: { progressToken: 'p' } },
    }),
  });
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = answer.text();
  // Someone who can publish to the store replays the first part that carried a progress
  // notification, at once (well within its freshness).
  const first = await eventually(
    () =>
      ownerPublished.slice(before).find((m) => {
        const part = opened(m);
        return (
          part.k === 'part' && part.end !== true && part.data?.toString().includes('notifications/progress')
        );
      }),
    { timeoutMs: 10_000, what: 'a part carrying a progress notification' },
  );
  await store.publish(first.channel, first.text);
  const body = await text;
  const steps = [...body.matchAll(/"progress":(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(steps, [1, 2, 3, 4], `the caller's stream: ${body}`);
});
