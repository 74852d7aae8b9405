/**
 * A client's `notifications/cancelled` for a resumable call running on another instance, passed
 * on over the store's pub/sub (virtual/fleet-streams.ts, virtual/fleet-cancels.ts): told again
 * to an instance that starts listening, acted on once, bounded per principal. Two instances
 * share a real redis-server.
 *
 * Review 12, GAPS-2: the repeat (then told once more listenMs, 2 s, later, naming only the
 * virtual server, session and request id) cancelled a NEW call that reused the id once the first
 * word had cancelled the first one. (MCP asks a client not to reuse an id within a session, but
 * the proxy cancels on the client's behalf here: a cancellation must reach only the request that
 * was running when it was sent.) Each cancellation now carries a nonce acted on once.
 *
 * Review 12, GAPS-3: the repeats were kept in one set of at most 1,024 per instance, shared by
 * every principal: one principal posting 1,024 cancellations of ids that run nowhere (16 batches
 * of 64, each answered 202) filled it, and another principal's cancellation in its call's first
 * round trip was told once only, to nobody listening: its call ran to its timeout. (Without the
 * flood the test passed.) The running instance reaches Redis through a forwarder that holds its
 * SUBSCRIBE until the cancellation was answered. Each principal now has a share (64).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CANCEL_KEEPING } from '../src/virtual/fleet-cancels.ts';
import { FLEET_LIMITS } from '../src/virtual/fleet-channels.ts';
import { eventually } from './helpers/eventually.ts';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { firstEvent, rawClient } from './helpers/resumable-member.ts';

const FLOODER_TOKEN = 'review12-gaps-3-flooding-principal-token';

test('a cancellation told twice does not cancel a later call that reused its id', async (t) => {
  const { calls, running, elsewhere, leaving } = await startFleetPair(t);
  const here = rawClient(running.url);
  const there = rawClient(elsewhere.url);
  const session = await here.initialize();

  // Call 7 runs on `running`; its instance listens on the principal's channel meanwhile.
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving))).data, '');
  await eventually(() => calls.started === 1, { what: 'the first call running on the member' });
  const cancelledAt = Date.now();
  const cancelled = await fetch(there.url, {
    method: 'POST',
    headers: there.headers(session),
    body: JSON.stringify({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 7, reason: 'changed my mind' },
    }),
  });
  assert.equal(cancelled.status, 202);
  await eventually(() => calls.aborted === 1, { what: 'the first call cancelled' });
  const heardInMs = Date.now() - cancelledAt;
  assert.ok(
    heardInMs < FLEET_LIMITS.listenMs / 2,
    `the first word was heard (${heardInMs} ms), not only its repeat: the scenario holds`,
  );

  // The client starts a new call with the same id; it must run on until its own end.
  assert.equal((await firstEvent(await here.call(session, 'wait', 7, leaving))).data, '');
  await eventually(() => calls.started === 2, { what: 'the second call running on the member' });
  // Past the moment the cancellation is told again (listenMs after it was first told).
  await delay(Math.max(0, cancelledAt + FLEET_LIMITS.listenMs + 1_000 - Date.now()));
  assert.equal(calls.aborted, 1, 'the second call (never cancelled by its client) still runs');
});

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
  const batches = Array.from({ length: CANCEL_KEEPING.kept / 64 }, (_, batch) =>
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
