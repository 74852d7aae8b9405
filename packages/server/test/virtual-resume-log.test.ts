/**
 * The answer log of a virtual server's 2025-era session in the store (virtual/answer-events.ts,
 * virtual/answer-log.ts), seen in Redis: a session ended by DELETE keeps nothing, even when a
 * call of it goes on and ends afterwards.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { firstEvent, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

/** Bytes of the answer logs' values in Redis (the per-principal counters left out). */
function answerLogBytes(url: string): number {
  const port = new URL(url).port;
  const keys = execFileSync('redis-cli', ['-p', port, '--scan', '--pattern', '*virtual-answers:*'])
    .toString()
    .split('\n')
    .filter((key) => key !== '' && !key.includes(':logs:'));
  return keys.reduce(
    (sum, key) => sum + Number(execFileSync('redis-cli', ['-p', port, 'STRLEN', key]).toString().trim()),
    0,
  );
}

test('a session ended by DELETE keeps no answer log, though its call ends after', async (t) => {
  // Not compressible: a log made again after DELETE would hold thousands of bytes.
  const text = randomBytes(3000).toString('hex');
  let started = false;
  let release = () => {};
  const member = await startMember((mcp) => {
    mcp.registerTool('held', { description: 'Answers once released.' }, async () => {
      started = true;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return { content: [{ type: 'text', text }] };
    });
  });
  t.after(() => member.stop());
  const redis = await startRedis();
  t.after(() => redis.stop());
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url), REDIS_URL: redis.url });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  const response = await raw.call(session, 'held');
  const body = response.clone();
  await firstEvent(response);
  await eventually(() => started, { what: 'the call running on the member' });
  assert.ok(answerLogBytes(redis.url) > 0, 'the priming event is kept');

  assert.equal((await raw.end(session)).status, 204);
  release();
  // The call's stream ends (with its answer, or cut by the session's end): its last event was
  // logged, or refused, before it was written.
  await body.text();
  assert.ok(answerLogBytes(redis.url) < 200, `${answerLogBytes(redis.url)} bytes kept after DELETE`);
});
