/**
 * Review 10, resumable answers, finding 6: a stream whose writer died (its instance crashed or
 * was killed mid-call) never logs its end, and a GET resuming it on another instance waits for
 * it until the session expires (up to 24 hours with the default ANSWER_POLL_MS=0; with polling
 * the client is closed and resumes again forever): nothing in the log tells a live stream from a
 * dead one (surfaces/mcp/resumable-answer.ts resumeAnswer, virtual/answer-events.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChildProxy } from './helpers/child-proxy.ts';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

const SECRET = 'review10-resume-session-secret-0123456789';

test('a stream whose instance died mid-call is not waited for until the session expires', async (t) => {
  let started = false;
  const member = await startMember((mcp) => {
    mcp.registerTool('slow', { description: 'Runs 20 s.' }, async () => {
      started = true;
      await sleep(20_000);
      return { content: [{ type: 'text', text: 'done' }] };
    });
  });
  t.after(() => member.stop());
  const redis = await startRedis();
  t.after(() => redis.stop());
  const env = {
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    REDIS_URL: redis.url,
    SESSION_SECRET: SECRET,
    UPSTREAM_TIMEOUT_MS: '3000',
  };
  const dying = await startChildProxy(env, 256);
  t.after(() => dying.stop());
  const survivor = await startProxy(env);
  t.after(() => survivor.close());

  const session = await rawClient(dying.url).initialize();
  const leaving = new AbortController();
  t.after(() => leaving.abort());
  const priming = await firstEvent(await rawClient(dying.url).call(session, 'slow', 1, leaving.signal));
  await eventually(() => started, { what: 'the call running on the member' });
  await dying.stop();

  const resumed = await rawClient(survivor.url).resume(session, priming.id as string);
  assert.equal(resumed.status, 200);
  // The call could not have lasted past UPSTREAM_TIMEOUT_MS (3 s): the resumed stream should end
  // (an error answer, or closed for the client to learn the stream is gone) well within 15 s.
  const outcome = await Promise.race([resumed.text().then(() => 'ended'), sleep(15_000, 'still open')]);
  assert.equal(outcome, 'ended', 'the resumed stream of a dead instance waits on');
  // And it is not resumed again (a polling client would loop until the session expires).
  const again = await rawClient(survivor.url).resume(session, priming.id as string);
  assert.equal(again.status, 400);
  const body = (await again.json()) as { error: { code: number } };
  assert.equal(body.error.code, -33291, 'stream_event_unknown');
});
