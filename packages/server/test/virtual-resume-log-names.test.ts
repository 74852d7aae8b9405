/**
 * A resumable answer log's store keys (and its principal's `logs:` counter) are named by an
 * HMAC of the principal key under a key derived from SESSION_SECRET (virtual/answer-events.ts,
 * ANSWER_LOGS_PURPOSE), never by its plain hash when the secret is set.
 *
 * Review 13, GAPS-5 (fixed): answer-log keys are now grouped by principal as `<sha256 of the principal
 * key>/<log>` (virtual/answer-events.ts logKey, principalHash), a keyless hash even with
 * SESSION_SECRET set (the same as the `logs:` counter's name). Principal keys are guessable
 * (`static:<sha256 of the token>` as written in the configuration, `oidc:<issuer>#<sub>`,
 * `minted:<minter>:<subject>`), so whoever can read the store (`SCAN`, `KEYS`, `MONITOR`, and the
 * log's own pub/sub channel, named by the same key) learns which principal each resumable session's
 * log is, how many it has and when it is active — what review 10 FLEET-3 fixed for the
 * principal's fleet channel (an HMAC under a key derived from SESSION_SECRET). Asserted: no store
 * key holds the keyless hash of the principal key.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from './helpers/eventually.ts';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

test('a resumable answer log is named so that a store reader cannot tell whose it is', async (t) => {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const redis = await startRedis();
  const proxy = await startProxy({
    MCP_PROXY_CONFIG: oneMemberConfig(member.url),
    SESSION_SECRET: 'review13-gaps-5-session-secret-0123456789',
    REDIS_URL: redis.url,
  });
  const leaving = new AbortController();
  t.after(async () => {
    leaving.abort();
    await proxy.close();
    await redis.stop();
  });
  const client = rawClient(proxy.url);
  const session = await client.initialize();
  const priming = await firstEvent(await client.call(session, 'wait', 7, leaving.signal));
  assert.ok(priming.id, 'the call is resumable: its answer is logged');
  await eventually(() => member.calls.started === 1, { what: 'the call running on the member' });

  const { stdout } = await promisify(execFile)('redis-cli', ['-u', redis.url, '--scan', '--pattern', '*']);
  const keys = stdout.split('\n').filter(Boolean);
  assert.ok(
    keys.some((key) => key.includes('virtual-answers:')),
    `the answer log is in the store: ${keys.join(' ')}`,
  );
  // What a store reader computes from a principal key it guesses.
  const digest = createHash('sha256').update(TEST_TOKEN).digest('hex');
  const guessed = createHash('sha256').update(`static:${digest}`).digest('base64url');
  const named = keys.filter((key) => key.includes(guessed));
  assert.deepEqual(named, [], 'no store key is named by the keyless hash of the principal key');
});
