/**
 * A GET stream whose look at its session's end mark fails is a 503, never an open stream: the
 * hold reports the first look's outcome (virtual-servers.ts holdSession `looked`: 'ended' |
 * 'live' | 'unknown') and openStream (surfaces/mcp/virtual-handler.ts) answers 404 when ended,
 * 503 `store_unavailable` when the store could not say. Review 16 (gaps), finding 2, found it
 * failing OPEN: a session DELETEd through another instance before this one listened was served
 * a live stream while the store could not say.
 *
 * `running` reaches a real redis-server through a forwarder that holds its SUBSCRIBE (the end is
 * published to nobody there); the session ends through `elsewhere`; then Redis stops answering
 * (SIGSTOP) before the look.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHoldingForwarder } from './helpers/holding-forwarder.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

test('a GET stream whose end-mark look fails is not served as open (ended session, store down)', async (t) => {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const redis = await startRedis();
  const forwarder = await startHoldingForwarder(redis.url);
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: 'review16-gaps-2-session-secret-0123456789',
  };
  const running = await startProxy({ ...env, REDIS_URL: forwarder.url });
  const elsewhere = await startProxy({ ...env, REDIS_URL: redis.url });
  const leaving = new AbortController();
  let stopped = false;
  t.after(async () => {
    leaving.abort();
    if (stopped) redis.signal('SIGCONT');
    forwarder.release();
    await Promise.all([running.close(), elsewhere.close()]);
    await forwarder.stop();
    await redis.stop();
  });
  const here = rawClient(running.url);
  const session = await here.initialize();

  // The GET opens on `running` (its session looked up: live), whose subscription is held.
  const held = forwarder.holdNextSubscribe();
  const { 'content-type': _, ...get } = here.headers(session);
  const opening = fetch(here.url, {
    headers: { ...get, accept: 'text/event-stream' },
    signal: leaving.signal,
  });
  await held;
  // The session ends through `elsewhere` (told on a channel `running` does not hear yet) ...
  assert.equal((await rawClient(elsewhere.url).end(session)).status, 204);
  // ... and the store stops answering before `running` looks the end mark up (listenMs: 2 s).
  redis.signal('SIGSTOP');
  stopped = true;
  const stream = await opening;
  await stream.body?.cancel().catch(() => {});
  assert.notEqual(
    stream.status,
    200,
    'the GET of an ended session was served a stream while the store could not say',
  );
  assert.ok(
    [404, 503].includes(stream.status),
    `404 (ended) or 503 (store unavailable), got ${stream.status}`,
  );
});
