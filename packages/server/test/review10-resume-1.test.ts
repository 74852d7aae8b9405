/**
 * Review 10, resumable answers, finding 1: one event larger than the session log's byte bound
 * (256 KiB) empties the whole log instead of dropping the oldest events (virtual/answer-events.ts
 * `bounded` stops at the newest event that does not fit and keeps nothing older): a client whose
 * stream the proxy closed for polling never gets a big answer on its resumed stream (the stream
 * is closed without it, the next resumption is refused stream_event_unknown), and every other
 * stream of the session loses what it had kept.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProxy } from './helpers/proxy.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resume-review.ts';

const BIG = 'x'.repeat(300_000);
let member: { url: string; stop(): Promise<void> };
before(async () => {
  member = await startMember((mcp) => {
    mcp.registerTool('big', { description: 'A big answer, a little later.' }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      return { content: [{ type: 'text', text: BIG }] };
    });
  });
});
after(() => member.stop());

test('a big answer reaches the client that resumes the stream the proxy closed for polling', async (t) => {
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url), ANSWER_POLL_MS: '200' });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  // The proxy closes the stream after 200 ms: only the priming event came.
  const [priming, ...rest] = eventsOf(await (await raw.call(session, 'big')).text());
  assert.equal(rest.length, 0);
  let lastId = priming?.id as string;
  // The client resumes (as the SDK does) until it has the answer or is refused.
  for (let round = 0; round < 10; round++) {
    const resumed = await raw.resume(session, lastId);
    assert.equal(resumed.status, 200, `resumption ${round} refused: ${await resumed.clone().text()}`);
    const events = eventsOf(await resumed.text());
    const answer = events.find((event) => event.data !== '');
    if (answer !== undefined) {
      assert.equal(JSON.parse(answer.data).result.content[0].text.length, BIG.length);
      return;
    }
    lastId = events.at(-1)?.id ?? lastId;
  }
  assert.fail('the answer never came on a resumed stream');
});
