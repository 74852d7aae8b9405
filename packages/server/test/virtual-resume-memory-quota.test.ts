/**
 * Session 8, gap 3: resumable answer logs take a store key per event (up to 257 per session, 32
 * sessions a day per principal: 8,224 keys), while `STORE=memory` holds 100,000 keys for
 * everything: a dozen principals' logs could fill it, and what must be written (a session's end,
 * a revocation, a mint record, a counter) was then refused `store_full` for everyone. Answer
 * logs now take at most half of the memory store's keys; past that their streams are served, not
 * resumable, and the rest of the store keeps its room. The proxy runs on the memory store the
 * configuration builds, made small (400 keys) so one principal reaches the bound quickly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SYSTEM_CLOCK } from '../src/clock.ts';
import { memoryStore } from '../src/store/open-store.ts';
import { startProxy } from './helpers/proxy.ts';
import { eventsOf, oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

const STORE_KEYS = 400;

test('answer logs never fill the memory store: past their half, streams are not resumable and sessions still end', async (t) => {
  const member = await startMember((mcp) => {
    mcp.registerTool('ok', { description: 'Answers.' }, () => ({
      content: [{ type: 'text', text: 'done' }],
    }));
  });
  t.after(() => member.stop());
  const store = memoryStore(SYSTEM_CLOCK, STORE_KEYS);
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url) }, { store });
  t.after(() => proxy.close());
  const raw = rawClient(proxy.url);

  // Sessions of one principal, each logging its calls, until a stream comes without event ids.
  let resumable = 0;
  let unlogged: ReturnType<typeof eventsOf> | undefined;
  for (let opened = 0; opened < 30 && unlogged === undefined; opened++) {
    const session = await raw.initialize();
    for (let n = 0; n < 8 && unlogged === undefined; n++) {
      const events = eventsOf(await (await raw.call(session, 'ok', n + 1)).text());
      assert.match(events.at(-1)?.data ?? '', /"done"/, 'the call is answered either way');
      if (events.every((event) => event.id === undefined)) unlogged = events;
      else resumable += 1;
    }
  }
  assert.ok(unlogged !== undefined, `answer logs were refused at their bound (${resumable} calls logged)`);
  assert.ok(resumable >= 4, `calls were logged before the bound (${resumable})`);

  // What must be written still is: a session's end (its mark and the principal's counter).
  const session = await raw.initialize();
  const ended = await raw.end(session);
  assert.equal(ended.status, 204, await ended.text());
  assert.equal((await raw.end(session)).status, 404, 'the end was kept');
});
