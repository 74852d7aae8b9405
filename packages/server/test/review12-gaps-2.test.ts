/**
 * Review 12, GAPS-2: a `notifications/cancelled` passed on to the other instances is told once
 * more FLEET_LIMITS.listenMs (2 s) later (459f02f), whether or not the first word was heard.
 * The second word names only (virtual server, session, request id): when the first word already
 * cancelled the call and the client, answered, starts a new call with that id in the meantime,
 * the late repeat cancels the NEW call, one the client never cancelled. (MCP asks a client not
 * to reuse an id within a session, but the proxy cancels on the client's behalf here: a
 * cancellation must reach only the request that was running when it was sent.) Two instances
 * share a real redis-server; the first call and the cancel go through different instances.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FLEET_LIMITS } from '../src/virtual/fleet-streams.ts';
import { eventually } from './helpers/eventually.ts';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { firstEvent, rawClient } from './helpers/resumable-member.ts';

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
