/**
 * Review 10, resumable answers, finding 1: one event larger than the session log's byte bound
 * (256 KiB) empties the whole log instead of dropping the oldest events (virtual/answer-events.ts
 * `bounded` stops at the newest event that does not fit and keeps nothing older): a client whose
 * stream the proxy closed for polling never gets a big answer on its resumed stream (the stream
 * is closed without it, the next resumption is refused stream_event_unknown), and every other
 * stream of the session loses what it had kept.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, type TestContext, test } from 'node:test';
import { startProxy } from './helpers/proxy.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

const BIG = 'x'.repeat(300_000);
/** As big, and not compressible: past the log's byte bound however it is kept. */
const NOISE = randomBytes(225_000).toString('base64');
let member: { url: string; stop(): Promise<void> };
before(async () => {
  member = await startMember((mcp) => {
    mcp.registerTool('big', { description: 'A big answer, a little later.' }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      return { content: [{ type: 'text', text: BIG }] };
    });
    mcp.registerTool('noise', { description: 'A big answer of noise, a little later.' }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      return { content: [{ type: 'text', text: NOISE }] };
    });
  });
});
after(() => member.stop());

/** Calls `tool` on a proxy that closes streams for polling; the answer's text from a resumed stream. */
async function resumedAnswer(t: TestContext, tool: string): Promise<string> {
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url), ANSWER_POLL_MS: '200' });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);
  const session = await raw.initialize();
  // The proxy closes the stream after 200 ms: only the priming event came.
  const [priming, ...rest] = eventsOf(await (await raw.call(session, tool)).text());
  assert.equal(rest.length, 0);
  let lastId = priming?.id as string;
  // The client resumes (as the SDK does) until it has the answer or is refused.
  for (let round = 0; round < 10; round++) {
    const resumed = await raw.resume(session, lastId);
    assert.equal(resumed.status, 200, `resumption ${round} refused: ${await resumed.clone().text()}`);
    const events = eventsOf(await resumed.text());
    const answer = events.find((event) => event.data !== '');
    if (answer !== undefined) {
      // Kept, not only announced to the stream then open: resuming again from the start replays it.
      const again = await raw.resume(session, priming?.id as string);
      assert.equal(again.status, 200, `resuming again refused: ${await again.clone().text()}`);
      assert.deepEqual(
        eventsOf(await again.text()).filter((event) => event.data !== ''),
        [answer],
        'the kept answer is replayed',
      );
      return JSON.parse(answer.data).result.content[0].text;
    }
    lastId = events.at(-1)?.id ?? lastId;
  }
  assert.fail('the answer never came on a resumed stream');
}

test('a big answer reaches the client that resumes the stream the proxy closed for polling', async (t) => {
  assert.equal(await resumedAnswer(t, 'big'), BIG);
});

test('an answer past the bound however it is stored is kept, alone, for the client that resumes', async (t) => {
  assert.equal(await resumedAnswer(t, 'noise'), NOISE);
});
