/**
 * Review 10 RESUME-5 across instances: a client that left a resumable call on one instance and
 * ends its session (DELETE) through another ends the call there, and the stream it resumed
 * there: the instance running them hears the session's end on the principal's channel.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

test('DELETE on one instance ends the resumable call and resumed stream left on another', async (t) => {
  const member = await startWaitingMember();
  const { calls } = member;
  t.after(() => member.stop());
  const redis = await startRedis();
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    REDIS_URL: redis.url,
    SESSION_SECRET: 'session-end-fleet-test-secret-0123456789',
    UPSTREAM_TIMEOUT_MS: '20000',
  };
  const [running, ending] = [await startProxy(env), await startProxy(env)];
  t.after(() => running.close());
  t.after(() => ending.close());
  // After the proxies close (hooks run in the order they were added): their close is then
  // quick (with Redis gone it is bounded, close-store-gone.test.ts, but takes a moment).
  t.after(() => redis.stop());
  const here = rawClient(running.url);
  const session = await here.initialize();
  const leaving = new AbortController();
  t.after(() => leaving.abort());
  const priming = await firstEvent(await here.call(session, 'wait', 3, leaving.signal));
  await eventually(() => calls.started === 1, { what: 'the call running on the member' });
  leaving.abort();
  const resumed = await here.resume(session, priming.id as string);
  assert.equal(resumed.status, 200);
  const resumedEnd = resumed.text();

  assert.equal((await rawClient(ending.url).end(session)).status, 204);
  await eventually(() => calls.aborted === 1, { what: 'the call cancelled on the member' });
  await resumedEnd;
});
