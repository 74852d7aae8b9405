/**
 * Review 10, resumable answers, finding 7: the log's byte bound counts UTF-16 code units of the
 * message's JSON (virtual/answer-events.ts `bounded`: `event.m.length`), while the store keeps
 * UTF-8 of that JSON escaped a second time: an answer of non-ASCII text (3 bytes a character)
 * or of quotes and control characters (escaped twice) keeps up to 3× the 256 KiB per session
 * the docs promise (and 24 MiB per principal, not 8).
 * (The log was one value when this was written; it is now a head and a key per event: the test
 * sums them all.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

/** The bytes of every string value in Redis, by key. */
function redisValues(url: string): Map<string, number> {
  const port = new URL(url).port;
  const keys = execFileSync('redis-cli', ['-p', port, '--scan']).toString().split('\n').filter(Boolean);
  const sizes = new Map<string, number>();
  for (const key of keys) {
    const type = execFileSync('redis-cli', ['-p', port, 'TYPE', key]).toString().trim();
    if (type === 'string')
      sizes.set(key, Number(execFileSync('redis-cli', ['-p', port, 'STRLEN', key]).toString().trim()));
  }
  return sizes;
}

test("a session's answer log keeps at most 256 KiB of the store, whatever the answer's text", async (t) => {
  const member = await startMember((mcp) => {
    mcp.registerTool('euros', { description: 'Non-ASCII text.' }, () => ({
      content: [{ type: 'text', text: '€'.repeat(250_000) }],
    }));
  });
  t.after(() => member.stop());
  const redis = await startRedis();
  t.after(() => redis.stop());
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url), REDIS_URL: redis.url });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  const events = eventsOf(await (await raw.call(session, 'euros')).text());
  assert.ok(
    events.some((event) => event.data.includes('€')),
    'the answer came',
  );
  // A log is its head and its events (one key each, `<head>:<slot>`): all of it counts.
  const kept = [...redisValues(redis.url)].filter(
    ([key]) => key.includes('virtual-answers:') && !key.includes(':logs:'),
  );
  const heads = kept.filter(([key]) => !/:\d+$/.test(key)).map(([key]) => key);
  assert.equal(heads.length, 1, `one answer log: ${heads.join(', ')}`);
  const bytes = kept
    .filter(([key]) => key === heads[0] || key.startsWith(`${heads[0]}:`))
    .reduce((sum, [, size]) => sum + size, 0);
  assert.ok(bytes <= 256 * 1024 + 4096, `the session's log holds ${bytes} bytes of the store`);
});
