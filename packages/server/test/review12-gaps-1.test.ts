/**
 * Review 12, GAPS-1: the memory store's answer-log quota (d04e02c) is one bound shared by every
 * principal. Session 8's gap 3 asked for a bound per principal: one principal's logs (up to
 * 32 x 257 = 8,224 keys a day each, so 7 principals fill the 50,000 keys of STORE=memory's
 * half) now take the whole quota, and every other principal's streams are served without event
 * ids (not resumable) until those logs expire, a day later. Here the proxy runs on the memory
 * store the configuration builds, made small (400 keys: 200 for answer logs) so one principal
 * reaches the shared bound; a second principal's first call must still be resumable.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { memoryStore } from '../src/store/open-store.ts';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

const STORE_KEYS = 400;
const OTHER_TOKEN = 'review12-gaps-other-principal-token-0123';

test("one principal's answer logs do not make another principal's streams unresumable", async (t) => {
  const member = await startMember((mcp) => {
    mcp.registerTool('ok', { description: 'Answers.' }, () => ({
      content: [{ type: 'text', text: 'done' }],
    }));
  });
  t.after(() => member.stop());
  const store = memoryStore(SYSTEM_CLOCK, STORE_KEYS);
  const proxy = await startProxy(
    { MCP_PROXY_CONFIG: oneMemberConfig(member.url), PROXY_TOKENS: OTHER_TOKEN },
    { store },
  );
  t.after(() => proxy.close());

  // Principal A (TEST_TOKEN) opens sessions and calls until its streams come without event ids.
  const greedy = rawClient(proxy.url, TEST_TOKEN);
  let logged = 0;
  let refused = false;
  for (let opened = 0; opened < 30 && !refused; opened++) {
    const session = await greedy.initialize();
    for (let n = 0; n < 8 && !refused; n++) {
      const events = eventsOf(await (await greedy.call(session, 'ok', n + 1)).text());
      assert.match(events.at(-1)?.data ?? '', /"done"/);
      if (events.every((event) => event.id === undefined)) refused = true;
      else logged += 1;
    }
  }
  assert.ok(refused, `principal A reached the answer-log bound (${logged} calls logged)`);

  // Principal B, which has logged nothing yet, calls once: its stream should carry event ids.
  const other = rawClient(proxy.url, OTHER_TOKEN);
  const session = await other.initialize();
  const events = eventsOf(await (await other.call(session, 'ok', 1)).text());
  assert.match(events.at(-1)?.data ?? '', /"done"/);
  assert.ok(
    events.some((event) => event.id !== undefined),
    `principal B's first stream is resumable (event ids) after principal A logged ${logged} calls`,
  );
});
