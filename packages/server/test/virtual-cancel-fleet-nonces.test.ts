/**
 * A principal past its share of remembered nonces has its cancellations told again ignored
 * (virtual/fleet-cancels.ts HeardCancels.acts): a nonce not remembered never cancels twice.
 *
 * Review 13, GAPS-2 (fixed): an instance remembers at most 256 heard nonces per principal (for 60 s);
 * past that, "its nonces are not remembered" (virtual/fleet-cancels.ts HeardCancels.first) and a
 * cancellation told again is acted on again. A principal that cancelled 256 calls within a minute
 * (a busy app under one token: its users' cancels add up) is back to review 12 GAPS-2: its
 * cancellation of call 7, told again when the running instance listens anew (the new call 7 of
 * the same session watches the channel; the keeper tells its kept cancellations again), cancels
 * the NEW call 7, which started before that new subscription was made (the `again` check by
 * `listenedAt` lets it through). Three instances share a real redis-server: `running` runs the
 * calls, `elsewhere` passes the client's cancellation of call 7, `third` passes the earlier 256.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CANCEL_KEEPING } from '../src/virtual/fleet-cancels.ts';
import { FLEET_LIMITS } from '../src/virtual/fleet-channels.ts';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

/** The body of a `notifications/cancelled` of request `id`. */
function cancelling(id: number | string): string {
  return JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } });
}

test("a principal's 257th cancellation in a minute, told again, does not cancel a later call that reused its id", async (t) => {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const { calls } = member;
  const redis = await startRedis();
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: 'review13-gaps-2-session-secret-0123456789',
    UPSTREAM_TIMEOUT_MS: '20000',
    REDIS_URL: redis.url,
  };
  const running = await startProxy(env);
  const elsewhere = await startProxy(env);
  const third = await startProxy(env);
  const leaving = new AbortController();
  t.after(async () => {
    leaving.abort();
    await Promise.all([running.close(), elsewhere.close(), third.close()]);
    await redis.stop();
  });
  const here = rawClient(running.url);
  const there = rawClient(elsewhere.url);
  const thirdClient = rawClient(third.url);
  const session = await here.initialize();

  // Calls 7 and 8 run on `running`, which listens on the principal's channel meanwhile.
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving.signal))).data, '');
  assert.equal((await firstEvent(await here.call(session, 'wait', 8, leaving.signal))).data, '');
  await eventually(() => calls.started === 2, { what: 'calls 7 and 8 running on the member' });

  // Through `third`, the client cancels 256 ids that run nowhere (4 batches of 64, one after the
  // other), then call 8: once call 8 is cancelled, `running` heard the 256 before it.
  for (let batch = 0; batch < CANCEL_KEEPING.principalHeard / 64; batch++) {
    const ids = Array.from({ length: 64 }, (_, n) => cancelling(`nothing-${batch}-${n}`));
    const answer = await fetch(thirdClient.url, {
      method: 'POST',
      headers: thirdClient.headers(session),
      body: `[${ids.join(',')}]`,
    });
    assert.equal(answer.status, 202, await answer.text());
  }
  const last = await fetch(thirdClient.url, {
    method: 'POST',
    headers: thirdClient.headers(session),
    body: cancelling(8),
  });
  assert.equal(last.status, 202);
  await eventually(() => calls.aborted === 1, { what: 'call 8 cancelled (the 256 heard before it)' });

  // The client cancels call 7 through `elsewhere` (which keeps it to tell again).
  const cancelled = await fetch(there.url, {
    method: 'POST',
    headers: there.headers(session),
    body: cancelling(7),
  });
  assert.equal(cancelled.status, 202);
  await eventually(() => calls.aborted === 2, { what: 'call 7 cancelled' });

  // The client starts a new call with the same id; it must run on until its own end.
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving.signal))).data, '');
  await eventually(() => calls.started === 3, { what: 'the new call 7 running on the member' });
  // Past the moment `running` listens anew and `elsewhere` tells its kept cancellation again.
  await delay(FLEET_LIMITS.listenMs);
  assert.equal(calls.aborted, 2, 'the new call 7 (never cancelled by its client) still runs');
});
