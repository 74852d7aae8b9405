/**
 * A 2025-era session's GET stream on a virtual server ends with its session, even when the end
 * is told before the instance serving the stream listens to the principal's channel.
 *
 * Review 13, GAPS-4 (fixed: the stream holds its session's end as a resumable call does, and the
 * end mark is looked at again when the slow subscription is made): review 12 GAPS-4 (an end told after the first look at the session's end
 * mark and before a subscription slower than listenMs is made goes unheard) was fixed for a
 * resumable call's hold only (virtual-servers.ts holdSession, FleetStreams.whenListening). A GET
 * stream has the same window: its headers go out once the principal's channel is listened to OR
 * listenMs (2 s) passed, the session is looked up once then (surfaces/mcp/virtual-handler.ts
 * openStream), and a DELETE through another instance after that look and before the slow
 * subscription is made is published to nobody: the GET stream of the ended session stays open
 * (it goes on carrying the principal's member messages) until its client leaves. Two instances
 * share a real redis-server; `running` reaches it through a forwarder that holds its SUBSCRIBE.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startFleetPair } from './helpers/fleet-pair.ts';
import { rawClient } from './helpers/resumable-member.ts';

test('a DELETE after listenMs but before a slow subscription is made still ends the GET stream', async (t) => {
  const { running, elsewhere, forwarder, leaving } = await startFleetPair(t, { holding: true });
  assert.ok(forwarder);
  const here = rawClient(running.url);
  const session = await here.initialize();

  // The GET stream opens on `running`, whose subscription to the principal's channel is held:
  // its headers come once listenMs passed.
  const held = forwarder.holdNextSubscribe();
  const { 'content-type': _, ...get } = here.headers(session);
  const stream = await fetch(here.url, { headers: { ...get, accept: 'text/event-stream' }, signal: leaving });
  assert.equal(stream.status, 200);
  await held;
  const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
  const ended = (async () => {
    for (;;) if ((await reader.read()).done) return true;
  })().catch(() => true);

  // The session ends through the other instance; then the subscription goes through.
  assert.equal((await rawClient(elsewhere.url).end(session)).status, 204);
  forwarder.release();
  const outcome = await Promise.race([ended, delay(10_000, false, { signal: leaving }).catch(() => false)]);
  assert.equal(outcome, true, 'the GET stream of the ended session ended within 10 s');
});
