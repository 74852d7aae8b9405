/**
 * Review 12, GAPS-3: the second word of a passed-on cancellation (459f02f, what closes the
 * first-round-trip window) is kept in one set of at most FLEET_LIMITS.cancelsAgain (1,024)
 * timers per instance, shared by every principal. One principal that posts 1,024
 * `notifications/cancelled` for ids that run nowhere (16 batches of 64, each answered 202)
 * fills it for 2 s, and another principal's cancellation in its call's first round trip is
 * then told once only, to nobody listening: its call runs to its timeout, as before the fix.
 * (Without the flood this test passes.) Two instances share a real redis-server; the running one reaches it through a forwarder
 * that holds its SUBSCRIBE until the cancellation was answered.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLEET_LIMITS } from '../src/virtual/fleet-streams.ts';
import { eventually } from './helpers/eventually.ts';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { firstEvent, rawClient } from './helpers/resumable-member.ts';

const FLOODER_TOKEN = 'review12-gaps-3-flooding-principal-token';

/** The body of a `notifications/cancelled` of request `id`. */
function cancelling(id: number | string): string {
  return JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } });
}

test("another principal's flood of cancellations does not keep a first-round cancellation from its call", async (t) => {
  const { calls, running, elsewhere, forwarder, leaving } = await startFleetPair(t, {
    holding: true,
    env: { PROXY_TOKENS: FLOODER_TOKEN },
  });
  assert.ok(forwarder);
  const victim = rawClient(running.url, TEST_TOKEN);
  const victimThere = rawClient(elsewhere.url, TEST_TOKEN);
  const flooder = rawClient(elsewhere.url, FLOODER_TOKEN);
  const session = await victim.initialize();
  const flooderSession = await flooder.initialize();

  // The victim's call starts on `running`, whose subscription to its channel is held.
  const held = forwarder.holdNextSubscribe();
  assert.equal((await firstEvent(await victim.call(session, 'wait', 7, leaving))).data, '');
  await held;
  await eventually(() => calls.started === 1, { what: 'the call running on the member' });

  // Another principal posts cancellations of ids that run nowhere, on the other instance, in
  // batches of 64 (the default maxBatchMessages): 16 POSTs.
  const floodStarted = Date.now();
  const batches = Array.from({ length: FLEET_LIMITS.cancelsAgain / 64 }, (_, batch) =>
    fetch(flooder.url, {
      method: 'POST',
      headers: flooder.headers(flooderSession),
      body: `[${Array.from({ length: 64 }, (_, n) => cancelling(`nothing-${batch}-${n}`)).join(',')}]`,
    }),
  );
  for (const answer of await Promise.all(batches)) assert.equal(answer.status, 202, await answer.text());
  const floodMs = Date.now() - floodStarted;
  assert.ok(floodMs < FLEET_LIMITS.listenMs / 2, `the flood took less than listenMs (${floodMs} ms)`);

  // The victim cancels its call through the other instance; then the subscription goes through.
  const cancelled = await fetch(victimThere.url, {
    method: 'POST',
    headers: victimThere.headers(session),
    body: cancelling(7),
  });
  assert.equal(cancelled.status, 202);
  forwarder.release();
  await eventually(() => calls.aborted === 1, {
    what: "the victim's call cancelled on the member",
    timeoutMs: 10_000,
  });
});
