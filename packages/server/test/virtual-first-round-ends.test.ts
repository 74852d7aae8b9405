/**
 * Session 8, gap 2: an instance listens for a virtual session's end and its client's
 * cancellations (the principal's fleet channel) only from the moment a resumable call starts
 * there. A DELETE or `notifications/cancelled` sent through another instance while that
 * subscription is still on its way to Redis was published to nobody: the call ran to its
 * timeout. Here the running instance reaches Redis through a forwarder that holds its next
 * SUBSCRIBE until the DELETE (or the cancellation) has been answered, then lets it through:
 * the call must still end, and its member hear the cancellation.
 *
 * Review 12, GAPS-4: the hold looked at the session's end mark once, when the subscription was
 * made OR listenMs (2 s) had passed, whichever came first; a DELETE sent after that look but
 * before a slower subscription was made was missed. A cancellation passed on was told again
 * once, listenMs later: an instance whose subscription was made later still missed both. The
 * end mark is now looked at again when the subscription is made, and an instance that starts
 * listening says so (the cancellations kept elsewhere are told to it then).
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FLEET_LIMITS } from '../src/virtual/fleet-channels.ts';
import { eventually } from './helpers/eventually.ts';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { firstEvent, rawClient } from './helpers/resumable-member.ts';

for (const how of ['DELETE', 'notifications/cancelled'] as const) {
  test(`a ${how} through another instance in a resumable call's first round trip ends the call`, async (t) => {
    await endsWhileSubscribing(t, how, { sentAfterMs: 0, releasedAfterMs: 0 });
  });
}

// GAPS-4: a DELETE once the hold's first look passed (listenMs), before the subscription is made.
test('a DELETE after listenMs but before a slow subscription is made still ends the call', async (t) => {
  await endsWhileSubscribing(t, 'DELETE', { sentAfterMs: FLEET_LIMITS.listenMs + 500, releasedAfterMs: 0 });
});

// A cancellation whose repeat listenMs later would also come before the subscription is made.
test('a notifications/cancelled before a subscription slower than listenMs still ends the call', async (t) => {
  await endsWhileSubscribing(t, 'notifications/cancelled', {
    sentAfterMs: 0,
    releasedAfterMs: FLEET_LIMITS.listenMs + 1_000,
  });
});

/**
 * Starts a resumable call on `running` whose SUBSCRIBE is held; `sentAfterMs` after it was held,
 * ends its session or cancels it through `elsewhere`; `releasedAfterMs` after that, lets the
 * SUBSCRIBE through: the call must end on its member.
 */
async function endsWhileSubscribing(
  t: TestContext,
  how: 'DELETE' | 'notifications/cancelled',
  timing: { readonly sentAfterMs: number; readonly releasedAfterMs: number },
): Promise<void> {
  const { calls, running, elsewhere, forwarder, leaving } = await startFleetPair(t, { holding: true });
  assert.ok(forwarder);
  const here = rawClient(running.url);
  const session = await here.initialize();

  const held = forwarder.holdNextSubscribe();
  const priming = await firstEvent(await here.call(session, 'wait', 7, leaving));
  assert.equal(priming.data, '');
  await held;
  const heldAt = Date.now();
  await eventually(() => calls.started === 1, { what: 'the call running on the member' });
  await delay(Math.max(0, heldAt + timing.sentAfterMs - Date.now()));
  if (how === 'DELETE') assert.equal((await rawClient(elsewhere.url).end(session)).status, 204);
  else {
    const cancelled = await fetch(rawClient(elsewhere.url).url, {
      method: 'POST',
      headers: rawClient(elsewhere.url, TEST_TOKEN).headers(session),
      body: JSON.stringify({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: 7, reason: 'changed my mind' },
      }),
    });
    assert.equal(cancelled.status, 202);
  }
  await delay(timing.releasedAfterMs);
  // The running instance's subscription reaches Redis only after the other one published.
  forwarder.release();
  await eventually(() => calls.aborted === 1, {
    what: 'the call cancelled on the member',
    timeoutMs: 10_000,
  });
}
