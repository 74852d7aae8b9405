/**
 * A principal's remembered cancellation nonces age out (review 14, GAPS-1, fixed in
 * virtual/fleet-cancels.ts HeardCancels.acts: its nonces older than 2 x keptMs are forgotten
 * before its 256 bound is judged). Before, they never aged out below the instance's whole
 * bound (virtual/fleet-cancels.ts HeardCancels.acts: a principal's map is pruned only in
 * #makeRoom, which runs only once all principals together hold CANCEL_KEEPING.heard = 16,384).
 * So "past 256 nonces in 60 s" is really "past 256 nonces ever heard on this instance": a
 * principal that cancelled 256 calls over its lifetime (however slowly) is deafened again at each
 * later cancellation, and its cancellations told again (the only word an instance whose
 * subscription was slow hears) are ignored for good: the call runs on to its timeout.
 *
 * Three instances share a real redis-server; `running` reaches it through a forwarder that can
 * hold its SUBSCRIBE. The 256 earlier cancellations are heard more than 2 x keptMs (60 s) before
 * the one that matters (the instances' clock moved on, not waited for): none of them could be
 * told again any more.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type Clock, SYSTEM_CLOCK } from '../src/clock.ts';
import { CANCEL_KEEPING } from '../src/virtual/fleet-cancels.ts';
import { eventually } from './helpers/eventually.ts';
import { startHoldingForwarder } from './helpers/holding-forwarder.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

/** The body of a `notifications/cancelled` of request `id`. */
function cancelling(id: number | string): string {
  return JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } });
}

test('256 cancellations heard over a minute ago do not deafen the principal: a cancellation told again still cancels', async (t) => {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const { calls } = member;
  const redis = await startRedis();
  const forwarder = await startHoldingForwarder(redis.url);
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: 'review14-gaps-1-session-secret-0123456789',
    UPSTREAM_TIMEOUT_MS: '20000',
  };
  // The instances' clock (one for all three: what they seal for one another stays fresh), which
  // the test moves forward instead of waiting a minute; timers stay real.
  let ahead = 0;
  const clock: Clock = { now: () => Date.now() + ahead, every: SYSTEM_CLOCK.every };
  const running = await startProxy({ ...env, REDIS_URL: forwarder.url }, { clock });
  const elsewhere = await startProxy({ ...env, REDIS_URL: redis.url }, { clock });
  const third = await startProxy({ ...env, REDIS_URL: redis.url }, { clock });
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
  const post = (body: string) =>
    fetch(thirdClient.url, { method: 'POST', headers: thirdClient.headers(session), body });

  // Call 8 runs on `running` (listening); the client cancels 256 ids that run nowhere, then 8.
  assert.equal((await firstEvent(await here.call(session, 'wait', 8, leaving.signal))).data, '');
  await eventually(() => calls.started === 1, { what: 'call 8 running on the member' });
  for (let batch = 0; batch < CANCEL_KEEPING.principalHeard / 64; batch++) {
    const ids = Array.from({ length: 64 }, (_, n) => cancelling(`old-${batch}-${n}`));
    assert.equal((await post(`[${ids.join(',')}]`)).status, 202);
  }
  assert.equal((await post(cancelling(8))).status, 202);
  await eventually(() => calls.aborted === 1, { what: 'call 8 cancelled (the 256 heard before it)' });

  // Long enough that none of those 256 can be told again (kept 30 s; remembered for 2 x that).
  ahead += 2 * CANCEL_KEEPING.keptMs + 2_000;

  // A minute later: call 9, one cancellation of nothing, then 9's own (a quiet principal now).
  assert.equal((await firstEvent(await here.call(session, 'wait', 9, leaving.signal))).data, '');
  await eventually(() => calls.started === 2, { what: 'call 9 running on the member' });
  assert.equal((await post(cancelling('late'))).status, 202);
  assert.equal((await post(cancelling(9))).status, 202);
  await eventually(() => calls.aborted === 2, { what: 'call 9 cancelled' });
  // Call 9's end reaches `running` (its channel unwatched) before call 7 watches it anew.
  await delay(500);

  // Call 7 starts on `running`, whose new subscription to the principal's channel is held.
  const held = forwarder.holdNextSubscribe();
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving.signal))).data, '');
  await held;
  await eventually(() => calls.started === 3, { what: 'call 7 running on the member' });
  // Cancelled through `elsewhere`: `running` misses the first word; `elsewhere` keeps it.
  const cancelled = await fetch(there.url, {
    method: 'POST',
    headers: there.headers(session),
    body: cancelling(7),
  });
  assert.equal(cancelled.status, 202);
  // `running` listens at last and says so: `elsewhere` tells it again, which must cancel call 7.
  forwarder.release();
  await eventually(() => calls.aborted === 3, { what: 'call 7 cancelled on the member', timeoutMs: 10_000 });
});
