/**
 * Kept cancellations make room at the expense of the principal keeping the most
 * (virtual/fleet-cancels.ts PassedCancels.keep): a principal keeping few always gets room.
 *
 * Review 13, GAPS-1 (fixed): the kept cancellations' instance-wide bound (1,024) is shared by every
 * principal, and one principal's share is 64 of it: 16 principals (16 tokens, 16 OIDC subjects
 * of an open identity provider, 16 minted subjects) each posting one batch of 64 cancellations
 * of ids that run nowhere fill it, and another principal's cancellation in its call's first round
 * trip is told once only, to nobody listening: its call runs on to its timeout. This is review 12
 * GAPS-3 again with the flood spread over 16 principals instead of one (virtual/fleet-cancels.ts
 * PassedCancels.keep: `this.#count >= CANCEL_KEEPING.kept`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CANCEL_KEEPING } from '../src/virtual/fleet-cancels.ts';
import { FLEET_LIMITS } from '../src/virtual/fleet-channels.ts';
import { eventually } from './helpers/eventually.ts';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { firstEvent, rawClient } from './helpers/resumable-member.ts';

const FLOODERS = Array.from(
  { length: CANCEL_KEEPING.kept / CANCEL_KEEPING.principalKept },
  (_, n) => `review13-gaps-1-flooding-principal-${n}-token`,
);

/** The body of a `notifications/cancelled` of request `id`. */
function cancelling(id: number | string): string {
  return JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } });
}

test("16 other principals' cancellations (64 each, their share) do not keep a first-round cancellation from its call", async (t) => {
  const { calls, running, elsewhere, forwarder, leaving } = await startFleetPair(t, {
    holding: true,
    env: { PROXY_TOKENS: FLOODERS.join(',') },
  });
  assert.ok(forwarder);
  const victim = rawClient(running.url, TEST_TOKEN);
  const victimThere = rawClient(elsewhere.url, TEST_TOKEN);
  const flooders = FLOODERS.map((token) => rawClient(elsewhere.url, token));
  const session = await victim.initialize();
  const flooderSessions = await Promise.all(flooders.map((flooder) => flooder.initialize()));

  // The victim's call starts on `running`, whose subscription to its channel is held.
  const held = forwarder.holdNextSubscribe();
  assert.equal((await firstEvent(await victim.call(session, 'wait', 7, leaving))).data, '');
  await held;
  await eventually(() => calls.started === 1, { what: 'the call running on the member' });

  // Each other principal posts one batch of 64 cancellations of ids that run nowhere (its share).
  const floodStarted = Date.now();
  const batches = flooders.map((flooder, n) =>
    fetch(flooder.url, {
      method: 'POST',
      headers: flooder.headers(flooderSessions[n]),
      body: `[${Array.from({ length: CANCEL_KEEPING.principalKept }, (_, k) => cancelling(`nothing-${k}`)).join(',')}]`,
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
