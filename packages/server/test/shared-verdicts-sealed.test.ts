/**
 * Upstream verdicts shared through Redis with SESSION_SECRET set (issue 19, review 8 SHARED-2):
 * instances still share them (B does not probe what A probed), the store names them by an HMAC
 * (no SHA-256 of the upstream URL to guess a URL's secret from offline) and holds them sealed,
 * and a verdict written by someone without the secret under the very name an instance uses is
 * not taken; nor is one forged under the unkeyed name (the last case).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStore } from '../src/store/redis-store.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { modernRequest } from './helpers/modern-client.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const SECRET = 'shared-verdicts-sealed-session-secret-0123456789';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

let redis: RedisServer;
let reader: Redis;
let everything: EverythingServer;
let recording: RecordingUpstream;
const proxies: RunningProxy[] = [];

async function proxy(): Promise<RunningProxy> {
  const started = await startProxy({ REDIS_URL: redis.url, SESSION_SECRET: SECRET });
  proxies.push(started);
  return started;
}

before(async () => {
  redis = await startRedis();
  reader = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await reader.connect();
  everything = await startEverything('streamableHttp');
  recording = await startRecordingUpstream(['echo']);
});
after(async () => {
  await Promise.all(proxies.map((started) => started.close()));
  reader?.disconnect();
  await recording?.stop();
  await everything?.stop();
  await redis?.stop();
});

it('sealed verdicts are shared: B does not probe an upstream A probed; names are keyed, values sealed', {
  timeout: 60_000,
}, async () => {
  const a = await proxy();
  const b = await proxy();
  const list = async (target: RunningProxy, id: number) => {
    const reply = await postProxy(target, {
      mcp_server_url: recording.url,
      ...modernRequest(id, 'tools/list'),
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  };
  await list(a, 1);
  assert.equal(recording.count('server/discover'), 1, 'A probed the era');
  await list(b, 2);
  assert.equal(recording.count('server/discover'), 1, 'B used the verdict A learnt');

  const keys = await reader.keys('mcp-proxy:verdicts:era:*');
  assert.equal(keys.length, 1, keys.join(', '));
  const unkeyed = createHash('sha256').update(new URL(recording.url).href).digest('base64url');
  assert.notEqual(
    keys[0],
    `mcp-proxy:verdicts:era:${unkeyed}`,
    'the name is not the URL hash anyone can compute',
  );
  const stored = (await reader.get(keys[0] as string)) ?? '';
  assert.match(stored, /^v1\./, 'the value is sealed');
  assert.ok(!stored.includes('modern'), stored);
});

it('a verdict forged under the name an instance uses is not taken', { timeout: 60_000 }, async () => {
  const a = await proxy();
  const url = new URL(everything.url).href;
  const first = await postProxy(a, { mcp_server_url: url, ...INITIALIZE });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const names = await reader.keys('mcp-proxy:verdicts:transport:*');
  assert.ok(names.length >= 1, 'the transport verdict was shared');
  // Someone who can read and write Redis (not an instance) overwrites every verdict it finds.
  const forged = JSON.stringify({ value: 'sse', until: Date.now() + 10 * 60_000 });
  for (const name of names) await reader.set(name, forged);
  const b = await proxy();
  const reply = await postProxy(b, { mcp_server_url: url, ...INITIALIZE });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.ok(reply.body.result?.serverInfo !== undefined, JSON.stringify(reply.body));
});

/**
 * Review 8 of shared state, finding 2: upstream verdicts shared through the store (issue 19) are
 * taken as they are read, unauthenticated, even with SESSION_SECRET set (under which every relay
 * message is sealed, http/relay-box.ts, because whoever can write to the store is not trusted).
 * Validation checks a verdict's shape, not who wrote it: one key written to Redis without an
 * expiry pins an upstream to a transport (or an era) it does not speak, for every instance and
 * every principal, and nothing unlearns it: each instance re-reads it from the store whenever
 * its own 10-minute copy expires, and the route it picks never reaches the answer that would
 * prove it wrong. Here a Streamable HTTP upstream (server-everything) is pinned to HTTP+SSE and
 * a session client's `initialize` fails.
 */
it('with SESSION_SECRET, a verdict someone else wrote into the store does not steer the proxy', {
  timeout: 60_000,
}, async () => {
  const url = new URL(everything.url).href;
  // Someone with write access to Redis (not an instance: no SESSION_SECRET) writes a verdict,
  // well formed and without expiry.
  const raw = new RedisStore(redis.url, () => {});
  assert.ok(await raw.ready(), 'the test reaches Redis');
  try {
    const hash = createHash('sha256').update(url).digest('base64url');
    const until = Date.now() + 10 * 60_000;
    await raw.set(`verdicts:transport:${hash}`, JSON.stringify({ value: 'sse', until }));
  } finally {
    await raw.close();
  }
  const unkeyed = await proxy();
  const reply = await postProxy(unkeyed, { mcp_server_url: url, ...INITIALIZE });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.ok(reply.body.result?.serverInfo !== undefined, JSON.stringify(reply.body));
});
