/**
 * Session 8, gap 3: resumable answer logs take a store key per event (up to 257 per session, 32
 * sessions a day per principal: 8,224 keys), while `STORE=memory` holds 100,000 keys for
 * everything: a dozen principals' logs could fill it, and what must be written (a session's end,
 * a revocation, a mint record, a counter) was then refused `store_full` for everyone. Answer
 * logs now take at most half of the memory store's keys; past that their streams are served, not
 * resumable, and the rest of the store keeps its room. The proxy runs on the memory store the
 * configuration builds, made small (400 keys) so one principal reaches the bound quickly.
 *
 * Review 12, GAPS-1: that bound was one quota shared by every principal: one principal's logs
 * (up to 32 x 257 = 8,224 keys a day each, so 7 principals fill the 50,000 keys of
 * STORE=memory's half) took the whole quota, and every other principal's streams were served
 * without event ids (not resumable) until those logs expired, a day later. Each principal now
 * has a share (a sixth of the half): a second principal's first call is still resumable once
 * the first principal reached its bound.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { memoryStore } from '../src/store/open-store.ts';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

const STORE_KEYS = 400;
const OTHER_TOKEN = 'review12-gaps-other-principal-token-0123';

test('answer logs never fill the memory store: past their half, streams are not resumable and sessions still end', async (t) => {
  const raw = rawClient(await startSmallProxy(t));

  // Sessions of one principal, each logging its calls, until a stream comes without event ids.
  const { logged: resumable, refused } = await logUntilRefused(raw);
  assert.ok(refused, `answer logs were refused at their bound (${resumable} calls logged)`);
  assert.ok(resumable >= 4, `calls were logged before the bound (${resumable})`);

  // What must be written still is: a session's end (its mark and the principal's counter).
  const session = await raw.initialize();
  const ended = await raw.end(session);
  assert.equal(ended.status, 204, await ended.text());
  assert.equal((await raw.end(session)).status, 404, 'the end was kept');
});

test("one principal's answer logs do not make another principal's streams unresumable", async (t) => {
  const url = await startSmallProxy(t, { PROXY_TOKENS: OTHER_TOKEN });

  // Principal A (TEST_TOKEN) opens sessions and calls until its streams come without event ids.
  const { logged, refused } = await logUntilRefused(rawClient(url, TEST_TOKEN));
  assert.ok(refused, `principal A reached the answer-log bound (${logged} calls logged)`);

  // Principal B, which has logged nothing yet, calls once: its stream should carry event ids.
  const other = rawClient(url, OTHER_TOKEN);
  const session = await other.initialize();
  const events = eventsOf(await (await other.call(session, 'ok', 1)).text());
  assert.match(events.at(-1)?.data ?? '', /"done"/);
  assert.ok(
    events.some((event) => event.id !== undefined),
    `principal B's first stream is resumable (event ids) after principal A logged ${logged} calls`,
  );
});

/** A proxy on a memory store of {@link STORE_KEYS} keys over a member whose tool `ok` answers; its URL. */
async function startSmallProxy(t: TestContext, env: Record<string, string> = {}): Promise<string> {
  const member = await startMember((mcp) => {
    mcp.registerTool('ok', { description: 'Answers.' }, () => ({
      content: [{ type: 'text', text: 'done' }],
    }));
  });
  t.after(() => member.stop());
  const store = memoryStore(SYSTEM_CLOCK, STORE_KEYS);
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url), ...env }, { store });
  t.after(() => proxy.close());
  return proxy.url;
}

/**
 * Opens sessions of `raw`'s principal (up to 30) and calls `ok` in each (up to 8 times) until a
 * stream comes without event ids: how many calls were logged, and whether one was refused.
 */
async function logUntilRefused(
  raw: ReturnType<typeof rawClient>,
): Promise<{ logged: number; refused: boolean }> {
  let logged = 0;
  for (let opened = 0; opened < 30; opened++) {
    const session = await raw.initialize();
    for (let n = 0; n < 8; n++) {
      const events = eventsOf(await (await raw.call(session, 'ok', n + 1)).text());
      assert.match(events.at(-1)?.data ?? '', /"done"/, 'the call is answered either way');
      if (events.every((event) => event.id === undefined)) return { logged, refused: true };
      logged += 1;
    }
  }
  return { logged, refused: false };
}
