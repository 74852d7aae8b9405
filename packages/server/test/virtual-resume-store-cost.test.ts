/**
 * Review 10, resumable answers, finding 4: every event of a resumable stream rewrites the
 * session's whole log in the store (virtual/answer-events.ts #write: read, parse, append,
 * stringify, compare-and-set the one value of up to 256 KiB): a call whose member sends many
 * small progress notifications makes the proxy write hundreds of times their size to the store
 * (Redis here; on the default SQLite store, synchronous UPDATEs of the whole row on the event
 * loop), and every resumed stream watching the log reads it all again per event.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

const NOTES = 300;
const NOTE = 'p'.repeat(1000);

/** Bytes Redis has received from its clients so far. */
function redisInputBytes(url: string): number {
  const port = new URL(url).port;
  const info = execFileSync('redis-cli', ['-p', port, 'INFO', 'stats']).toString();
  return Number(/total_net_input_bytes:(\d+)/.exec(info)?.[1]);
}

test("a call's progress costs the store about its own size, not hundreds of times it", async (t) => {
  const member = await startMember((mcp) => {
    mcp.registerTool('chatty', { description: 'Reports progress often.' }, async (extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let n = 1; n <= NOTES; n++) {
        if (progressToken !== undefined)
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: n, total: NOTES, message: NOTE },
          });
      }
      return { content: [{ type: 'text', text: 'done' }] };
    });
  });
  t.after(() => member.stop());
  const redis = await startRedis();
  t.after(() => redis.stop());
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url), REDIS_URL: redis.url });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  const before = redisInputBytes(redis.url);
  const response = await fetch(raw.url, {
    method: 'POST',
    headers: raw.headers(session),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'chatty', arguments: {}, _meta: { progressToken: 'p1' } },
    }),
  });
  const events = eventsOf(await response.text());
  const progress = events.filter((event) => event.data.includes('notifications/progress')).length;
  assert.equal(progress, NOTES, 'every progress notification reached the client');
  const written = redisInputBytes(redis.url) - before;
  const payload = NOTES * NOTE.length;
  assert.ok(
    written <= 10 * payload,
    `${NOTES} progress notifications of ${NOTE.length} B made the proxy send Redis ${written} B (${Math.round(written / payload)}× their size)`,
  );
});
