/**
 * A kept cancellation is told again once to each instance that says it started listening
 * (virtual/fleet-cancels.ts PassedCancels.retell): other instances' words do not use it up.
 *
 * Review 13, GAPS-3 (fixed): a kept cancellation is told again at most 8 times, once per "started
 * listening" heard on the principal's channel, from ANY instance (virtual/fleet-cancels.ts
 * PassedCancels.retell counts every retelling against CANCEL_KEEPING.retold). While the instance
 * running the call is still on its way to listening, the principal's own streams opening on a
 * third instance (a client's GET stream reconnecting, through a load balancer) use up the 8: when
 * the running instance listens at last and says so, nothing is told again, and the call runs on
 * to its timeout although its cancellation is still kept (30 s). Three instances share a real
 * redis-server; `running` reaches it through a forwarder that holds its SUBSCRIBE.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually } from './helpers/eventually.ts';
import { startHoldingForwarder } from './helpers/holding-forwarder.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

test('streams opening elsewhere while the running instance is on its way to listening do not use up its cancellation', async (t) => {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const { calls } = member;
  const redis = await startRedis();
  const forwarder = await startHoldingForwarder(redis.url);
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: 'review13-gaps-3-session-secret-0123456789',
    UPSTREAM_TIMEOUT_MS: '20000',
  };
  const running = await startProxy({ ...env, REDIS_URL: forwarder.url });
  const elsewhere = await startProxy({ ...env, REDIS_URL: redis.url });
  const third = await startProxy({ ...env, REDIS_URL: redis.url });
  const leaving = new AbortController();
  t.after(async () => {
    leaving.abort();
    forwarder.release();
    await Promise.all([running.close(), elsewhere.close(), third.close()]);
    await forwarder.stop();
    await redis.stop();
  });
  const here = rawClient(running.url);
  const there = rawClient(elsewhere.url);
  const thirdClient = rawClient(third.url);
  const session = await here.initialize();

  // Call 7 starts on `running`, whose subscription to the principal's channel is held.
  const held = forwarder.holdNextSubscribe();
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving.signal))).data, '');
  await held;
  await eventually(() => calls.started === 1, { what: 'the call running on the member' });

  // The client cancels it through `elsewhere`, which keeps the cancellation to tell it again.
  const cancelled = await fetch(there.url, {
    method: 'POST',
    headers: there.headers(session),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } }),
  });
  assert.equal(cancelled.status, 202);

  // Its GET stream opens on `third` and leaves, a few times (each opening listens anew there).
  const { 'content-type': _, ...get } = thirdClient.headers(session);
  // Nine openings: past the 8 retellings an earlier version allowed in all.
  for (let n = 0; n <= 8; n++) {
    const stream = new AbortController();
    const opened = await fetch(thirdClient.url, {
      headers: { ...get, accept: 'text/event-stream' },
      signal: stream.signal,
    });
    assert.equal(opened.status, 200);
    stream.abort();
    // The stream's end reaches `third` (its channel unwatched) before the next opening.
    await delay(200);
  }

  // Now `running`'s subscription goes through: the call must be cancelled (kept for 30 s).
  forwarder.release();
  await eventually(() => calls.aborted === 1, {
    what: 'the call cancelled on the member',
    timeoutMs: 10_000,
  });
});
