/**
 * A Redis subscriber that comes back (review 14, GAPS-2 and GAPS-3): what crossed on a
 * principal's channel while the running instance's subscriber was away is lost. Fixed: the
 * instance then says it listens again (a new round: kept cancellations are told again) and its
 * held sessions look their end marks up again (virtual/fleet-channels.ts #cameBack). Before,
 * only its GET streams heard so (virtual/fleet-streams.ts `missed` ended `#here`'s streams alone):
 *
 * - GAPS-2: a cancellation passed on meanwhile is kept 30 s by the instance that passed it, to
 *   be told again once the running instance listens (virtual/fleet-cancels.ts), but a subscriber
 *   coming back (store/redis-store.ts resubscribes and calls `missed`) says nothing on the
 *   channel (`listened` is called only when a watch makes a NEW subscription,
 *   fleet-channels.ts watch): nothing is told again, the call runs on to its timeout;
 * - GAPS-3: a DELETE meanwhile: the session's end mark is looked at once when a hold starts
 *   listening (VirtualServers.holdSession, review13 GAPS-4), not when the subscriber comes back:
 *   the call that outlives its connection (and a stream resumed from it) runs on.
 *
 * Two instances share a real redis-server; `running` reaches it through a forwarder that cuts its
 * link (a failover, a network blip) while the client acts through `elsewhere`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually } from './helpers/eventually.ts';
import { startHoldingForwarder } from './helpers/holding-forwarder.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

/** A call running on `running` (whose link to Redis can be cut), and the client's ways in. */
async function callWhileCut(t: import('node:test').TestContext, secret: string) {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const redis = await startRedis();
  const forwarder = await startHoldingForwarder(redis.url);
  // The call's own timeout far past what is waited for here (a timeout also aborts it).
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: secret,
    UPSTREAM_TIMEOUT_MS: '90000',
  };
  const running = await startProxy({ ...env, REDIS_URL: forwarder.url });
  const elsewhere = await startProxy({ ...env, REDIS_URL: redis.url });
  const leaving = new AbortController();
  t.after(async () => {
    leaving.abort();
    forwarder.mend();
    await Promise.all([running.close(), elsewhere.close()]);
    await forwarder.stop();
    await redis.stop();
  });
  const here = rawClient(running.url);
  const there = rawClient(elsewhere.url);
  const session = await here.initialize();
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving.signal))).data, '');
  await eventually(() => member.calls.started === 1, { what: 'call 7 running on the member' });
  // `running`'s link to Redis drops.
  forwarder.cut();
  return { calls: member.calls, forwarder, there, session };
}

test('a cancellation passed on while the running instance’s subscriber was away cancels the call once it is back', async (t) => {
  const { calls, forwarder, there, session } = await callWhileCut(
    t,
    'review14-gaps-2-session-secret-0123456789',
  );
  const cancelled = await fetch(there.url, {
    method: 'POST',
    headers: there.headers(session),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } }),
  });
  assert.equal(cancelled.status, 202);
  await delay(1_000);
  assert.equal(calls.aborted, 0, 'the link cut alone does not end the call');
  // Back within the 30 s `elsewhere` keeps the cancellation to tell it again.
  forwarder.mend();
  await eventually(() => calls.aborted === 1, { what: 'call 7 cancelled on the member', timeoutMs: 15_000 });
});

test('a session DELETEd while the running instance’s subscriber was away ends its call once it is back', async (t) => {
  const { calls, forwarder, there, session } = await callWhileCut(
    t,
    'review14-gaps-3-session-secret-0123456789',
  );
  assert.equal((await there.end(session)).status, 204);
  await delay(1_000);
  assert.equal(calls.aborted, 0, 'the link cut alone does not end the call');
  forwarder.mend();
  await eventually(() => calls.aborted === 1, { what: 'call 7 ended with its session', timeoutMs: 15_000 });
});
