/**
 * Review 12, GAPS-4: the hold of a resumable call looks at its session's end mark once, when
 * `listeningTo` resolves (459f02f): that is when the instance's SUBSCRIBE is answered OR
 * FLEET_LIMITS.listenMs (2 s) has passed, whichever comes first. A SUBSCRIBE slower than that
 * (a busy or reconnecting Redis) leaves the first-round window open past the look: a DELETE
 * sent through another instance after it, but before the subscription is made, is published to
 * nobody, and the call runs on to its timeout. Here the running instance's SUBSCRIBE is held
 * (a forwarder) until the DELETE was answered, sent once listenMs has passed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FLEET_LIMITS } from '../src/virtual/fleet-streams.ts';
import { eventually } from './helpers/eventually.ts';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { firstEvent, rawClient } from './helpers/resumable-member.ts';

test('a DELETE after listenMs but before a slow subscription is made still ends the call', async (t) => {
  const { calls, running, elsewhere, forwarder, leaving } = await startFleetPair(t, { holding: true });
  assert.ok(forwarder);
  const here = rawClient(running.url);
  const session = await here.initialize();

  const held = forwarder.holdNextSubscribe();
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving))).data, '');
  await held;
  const heldAt = Date.now();
  await eventually(() => calls.started === 1, { what: 'the call running on the member' });
  // The hold's one look at the end mark happens listenMs after the SUBSCRIBE was sent.
  await delay(Math.max(0, heldAt + FLEET_LIMITS.listenMs + 500 - Date.now()));
  assert.equal((await rawClient(elsewhere.url).end(session)).status, 204);
  forwarder.release();
  await eventually(() => calls.aborted === 1, { what: 'the call ended with its session', timeoutMs: 10_000 });
});
