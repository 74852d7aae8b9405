/**
 * A held session (here: by a running resumable call) looks its end mark up one look at a time:
 * each time the store's subscriber comes back (`missed`) the hold asks again
 * (virtual/session-ends.ts endLooker), and a look still waiting on the store gets one more after
 * it, not a second read in flight. Review 16 (gaps), Low: a flapping subscriber under a store that
 * does not answer stacked one read (and its retries) per comeback, for each held session.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { MemoryStore } from '../src/store/memory-store.ts';
import type { MissedListener, StoreListener } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { startProxy } from './helpers/proxy.ts';
import { firstEvent, oneMemberConfig, rawClient, startWaitingMember } from './helpers/resumable-member.ts';

/** A memory store whose session reads can be made to wait, and whose `missed` listeners can be called. */
class StallingStore extends MemoryStore {
  readonly missed: MissedListener[] = [];
  readonly waiting: Array<() => void> = [];
  stalled = false;
  sessionReads = 0;

  override async get(key: string): Promise<string | undefined> {
    if (!key.includes('session')) return super.get(key);
    this.sessionReads += 1;
    if (this.stalled) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return super.get(key);
  }

  override async subscribe(
    channel: string,
    listener: StoreListener,
    missed?: MissedListener,
  ): Promise<() => Promise<void>> {
    if (missed) this.missed.push(missed);
    return super.subscribe(channel, listener);
  }

  release(): void {
    this.stalled = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

test('a session held by a running call, whose subscriber comes back five times while the store stalls has one end-mark read in flight', async (t) => {
  const member = await startWaitingMember();
  t.after(() => member.stop());
  const store = new StallingStore();
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url) }, { store });
  const leaving = new AbortController();
  t.after(async () => {
    leaving.abort();
    store.release();
    await proxy.close();
  });
  const client = rawClient(proxy.url);
  const session = await client.initialize();
  // A resumable call outlives its connection: it holds the session's end while it runs.
  assert.equal((await firstEvent(await client.call(session, 'wait', 7, leaving.signal))).data, '');
  await eventually(() => member.calls.started === 1, { what: 'the call running on the member' });
  await delay(300);
  assert.ok(store.missed.length > 0, 'the principal channel was subscribed with a missed listener');

  store.stalled = true;
  const before = store.sessionReads;
  for (let comeback = 0; comeback < 5; comeback += 1) for (const missed of store.missed) missed(0);
  await eventually(() => store.sessionReads > before, { what: 'the hold looked its end mark up' });
  await delay(300);
  assert.equal(store.sessionReads - before, 1, 'one end-mark read in flight for the held session');
  // Once the store answers, the comebacks asked meanwhile are one more look (not five).
  store.release();
  await eventually(() => store.sessionReads - before === 2, { what: 'the one look asked meanwhile' });
  await delay(300);
  assert.equal(store.sessionReads - before, 2);
});
