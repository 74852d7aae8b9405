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
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { RedisStore } from '../src/store/redis-store.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RedisServer, startRedis } from './helpers/redis.ts';

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};
const SECRET = 'review8-shared-2-session-secret-0123456789abcdef';

let redis: RedisServer;
let everything: EverythingServer;
let proxy: RunningProxy | undefined;

before(async () => {
  redis = await startRedis();
  everything = await startEverything('streamableHttp');
});
after(async () => {
  await proxy?.close();
  await everything?.stop();
  await redis?.stop();
});

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
  proxy = await startProxy({ REDIS_URL: redis.url, SESSION_SECRET: SECRET });
  const reply = await postProxy(proxy, { mcp_server_url: url, ...INITIALIZE });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.ok(reply.body.result?.serverInfo !== undefined, JSON.stringify(reply.body));
});
