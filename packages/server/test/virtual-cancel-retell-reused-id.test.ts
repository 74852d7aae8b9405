/**
 * A cancellation told again after a subscriber came back is acted on only for a call that started
 * before the subscriber was lost (virtual/fleet-channels.ts heardSince: a later round is judged by
 * `lostAt`; the store says how long it was away), never for a newer call that reused the id while
 * the subscriber was away (its command connection up: the instance serves). Review 16 (gaps),
 * finding 1, found "listening since" moved to the comeback, so the retelling cancelled the newer call.
 *
 * Scenario: the client cancels call 7 just as it completes (the cancellation crosses its answer:
 * nothing runs under 7 anywhere, `elsewhere` passes it on and keeps it 30 s). `running`'s
 * subscriber alone is away then (Redis killed pubsub clients: an output-buffer limit, a failover
 * of the pubsub link) and its new SUBSCRIBE is held. The client reuses id 7 on `running` (a new
 * call). The subscriber comes back: `running` says `listening` in round 1, `elsewhere` tells the
 * kept cancellation again, and `running` cancels the NEW call 7.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { eventually } from './helpers/eventually.ts';
import { startHoldingForwarder } from './helpers/holding-forwarder.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

test('a cancellation told again after a subscriber came back does not cancel a newer call that reused the id', async (t) => {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const redis = await startRedis();
  const forwarder = await startHoldingForwarder(redis.url);
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: 'review16-gaps-1-session-secret-0123456789',
    UPSTREAM_TIMEOUT_MS: '90000',
  };
  const running = await startProxy({ ...env, REDIS_URL: forwarder.url });
  const elsewhere = await startProxy({ ...env, REDIS_URL: redis.url });
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const watcher = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  /** Clients subscribed to a channel (pattern subscribers aside). */
  const subscribers = async () =>
    String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
      .split('\n')
      .filter((line) => / sub=[1-9]/.test(line)).length;
  const leaving = new AbortController();
  t.after(async () => {
    leaving.abort();
    forwarder.release();
    admin.disconnect();
    watcher.disconnect();
    await Promise.all([running.close(), elsewhere.close()]);
    await forwarder.stop();
    await redis.stop();
  });
  const here = rawClient(running.url);
  const there = rawClient(elsewhere.url);
  const session = await here.initialize();
  // `running` listens to the principal's channel from now on (an open GET stream holds it).
  const { 'content-type': _, ...get } = here.headers(session);
  const stream = await fetch(here.url, {
    headers: { ...get, accept: 'text/event-stream' },
    signal: leaving.signal,
  });
  assert.equal(stream.status, 200);
  await delay(500);
  // The pubsub links drop; `running`'s subscriber comes back but its SUBSCRIBE is held.
  const held = forwarder.holdNextSubscribe();
  await admin.client('KILL', 'TYPE', 'pubsub');
  await held;
  // `elsewhere`'s own subscriber is back (it reconnects directly, not through the forwarder).
  await eventually(async () => (await subscribers()) >= 1, {
    what: 'elsewhere subscribed again',
  });
  // What crosses on the channels from now on (sealed: counted only).
  let published = 0;
  await watcher.psubscribe('*');
  watcher.on('pmessage', () => {
    published += 1;
  });
  // The client cancels call 7, which answered meanwhile (nothing runs under 7 on any instance).
  const cancelled = await fetch(there.url, {
    method: 'POST',
    headers: there.headers(session),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } }),
  });
  assert.equal(cancelled.status, 202);
  // Then reuses id 7 for a new call, on `running` (its command connection is up).
  const before = published;
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving.signal))).data, '');
  await eventually(() => member.calls.started === 1, { what: 'the new call 7 running on the member' });
  // `running`'s subscriber is back: it says it listens (round 1), `elsewhere` tells its kept
  // cancellation again.
  forwarder.release();
  await eventually(() => published >= before + 2, { what: 'listening said, the cancellation told again' });
  await delay(1_000);
  assert.equal(member.calls.aborted, 0, 'the newer call 7 was cancelled by the older call 7’s cancellation');
});
