/**
 * Session 8, gap 2: an instance listens for a virtual session's end and its client's
 * cancellations (the principal's fleet channel) only from the moment a resumable call starts
 * there. A DELETE or `notifications/cancelled` sent through another instance while that
 * subscription is still on its way to Redis was published to nobody: the call ran to its
 * timeout. Here the running instance reaches Redis through a forwarder that holds its next
 * SUBSCRIBE until the DELETE (or the cancellation) has been answered, then lets it through:
 * the call must still end, and its member hear the cancellation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { firstEvent, rawClient } from './helpers/resumable-member.ts';

for (const how of ['DELETE', 'notifications/cancelled'] as const) {
  test(`a ${how} through another instance in a resumable call's first round trip ends the call`, async (t) => {
    const { calls, running, elsewhere, forwarder, leaving } = await startFleetPair(t, { holding: true });
    assert.ok(forwarder);
    const here = rawClient(running.url);
    const session = await here.initialize();

    const held = forwarder.holdNextSubscribe();
    const priming = await firstEvent(await here.call(session, 'wait', 7, leaving));
    assert.equal(priming.data, '');
    await held;
    await eventually(() => calls.started === 1, { what: 'the call running on the member' });
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
    // The running instance's subscription reaches Redis only after the other one published.
    forwarder.release();
    await eventually(() => calls.aborted === 1, {
      what: 'the call cancelled on the member',
      timeoutMs: 10_000,
    });
  });
}
