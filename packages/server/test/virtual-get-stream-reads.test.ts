/**
 * A 2025-era session's GET stream on a virtual server reads its session's end mark twice per
 * open: when the session id is opened, and once the stream listens (the hold's look, which the
 * 404 for a session ended meanwhile waits for). Review 14 (Low): it read it a third time after
 * listening (surfaces/mcp/virtual-handler.ts openStream looked the session up again), one store
 * round trip per open that said nothing the hold's look did not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { MemoryStore } from '../src/store/memory-store.ts';
import { startProxy } from './helpers/proxy.ts';
import { oneMemberConfig, rawClient, startMember } from './helpers/resumable-member.ts';

/** A memory store that counts reads of each key. */
class CountingStore extends MemoryStore {
  readonly reads = new Map<string, number>();

  override async get(key: string): Promise<string | undefined> {
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    return super.get(key);
  }
}

test('opening a GET stream reads the session end mark twice, not three times', async (t) => {
  const member = await startMember(() => {});
  t.after(() => member.stop());
  const store = new CountingStore();
  const proxy = await startProxy({ MCP_PROXY_CONFIG: oneMemberConfig(member.url) }, { store });
  t.after(() => proxy.close());
  const client = rawClient(proxy.url);
  const session = await client.initialize();
  store.reads.clear();

  const leaving = new AbortController();
  const { 'content-type': _, ...get } = client.headers(session);
  const stream = await fetch(client.url, {
    headers: { ...get, accept: 'text/event-stream' },
    signal: leaving.signal,
  });
  assert.equal(stream.status, 200);
  // Whatever the open reads is read by the time the headers came; a moment more for a late read.
  await delay(300);
  leaving.abort();
  await stream.body?.cancel().catch(() => {});

  const sessionReads = [...store.reads].filter(([key]) => key.includes('session'));
  assert.equal(sessionReads.length, 1, `one session key read: ${JSON.stringify([...store.reads])}`);
  assert.equal(sessionReads[0]?.[1], 2, 'read when the id is opened and once the stream listens');
});
