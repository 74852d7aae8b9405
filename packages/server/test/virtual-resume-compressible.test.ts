/**
 * A session's answer log counts a message's own bytes, not its deflated ones (review of the
 * append-only log, finding 1): a reader inflates what it replays, so 256 KiB of deflated 'a's
 * would be hundreds of MiB in its memory. Two answers of 200 KB that deflate to a few hundred
 * bytes each are more than the 256 KiB a session keeps: the first is dropped, and resuming
 * from its priming event is refused `stream_event_unknown`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startProxy } from './helpers/proxy.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

test('a session keeps answers by their own size, however well they deflate', async (t) => {
  const member = await startMember((mcp) => {
    mcp.registerTool('plenty', { description: 'A long, very compressible text.' }, () => ({
      content: [{ type: 'text', text: 'a'.repeat(200_000) }],
    }));
  });
  t.after(() => member.stop());
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url) });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();

  const first = eventsOf(await (await raw.call(session, 'plenty', 1)).text());
  const priming = first[0];
  assert.ok(priming?.id, 'the answer stream is resumable (its priming event has an id)');
  assert.ok(
    first.some((event) => event.data.includes('aaaa')),
    'the first answer came',
  );
  // Resumable now: the log holds the first answer.
  const before = await raw.resume(session, priming.id as string);
  assert.equal(before.status, 200);
  await before.body?.cancel();

  const second = eventsOf(await (await raw.call(session, 'plenty', 2)).text());
  assert.ok(
    second.some((event) => event.data.includes('aaaa')),
    'the second answer came',
  );
  const after = await raw.resume(session, priming.id as string);
  const body = (await after.json()) as { error?: { code?: number } };
  assert.equal(after.status, 400, 'the first answer was dropped to keep the session within its bound');
  assert.equal(body.error?.code, -33291);
});
