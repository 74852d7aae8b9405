/**
 * Review 7 (credentials), finding CREDS-4: what holds the broker's token (a held session, a /ws
 * socket, a pooled or member session) learnt of a disconnect only from the end mark the
 * disconnect writes under its own key (credentials/live-credential.ts), and read a missing mark as
 * "never ended". That key can go while the holder is still open: a Redis with an evicting
 * `maxmemory-policy` drops it (it carries a TTL) while the vault entry's slot stays.
 *
 * The fix: a disconnect leaves a sealed tombstone in the vault entry's own slot (one key: it cannot
 * be evicted apart from what it ends). A missing entry still reads as "needs sign-in" (a refused
 * refresh deletes it: review R5 keeps such a /ws socket open for a new sign-in).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { TokenVault } from '../src/credentials/vault.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { eventually } from './helpers/eventually.ts';
import {
  disconnect,
  proxyCall,
  signInFrom,
  startBrokerProxy,
  startOAuthSseServer,
} from './helpers/oauth-sse-server.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A store that loses every end mark at once, as Redis under an evicting policy may. */
class EvictingStore extends MemoryStore {
  override async set(key: string, value: string, ttlMs?: number): Promise<void> {
    // The broker's keys carry its namespace before the vault's own prefix.
    if (key.includes(`:${TokenVault.endedKey('')}`)) return;
    await super.set(key, value, ttlMs);
  }
}

describe('CREDS-4: an end the store forgot still ends what held the token', () => {
  it('POST /proxy: a held HTTP+SSE session ends after a disconnect whose end mark was evicted', async () => {
    const server = await startOAuthSseServer(cleanup);
    const store = new EvictingStore();
    const { proxy, publicUrl } = await startBrokerProxy(cleanup, {}, { store });
    let id = 1;
    const call = (method: string, sessionId?: string, params: Record<string, unknown> = {}) =>
      proxyCall(
        proxy.url,
        { mcp_server_url: server.url, transport: 'sse', ...(sessionId ? { mcp_session_id: sessionId } : {}) },
        { id: id++, method, params },
      );
    await signInFrom(publicUrl, await call('tools/list'));
    const opened = await call('initialize', undefined, {
      protocolVersion: '2024-11-05',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    });
    const sessionId = opened.headers.get('mcp-session-id') ?? undefined;
    assert.ok(sessionId?.startsWith('mcpp-'), `a held session: ${JSON.stringify(opened.body)}`);
    const tool = { name: 'x', arguments: {} };
    const first = await call('tools/call', sessionId, tool);
    assert.equal(first.body?.result?.content?.[0]?.text, 'served', JSON.stringify(first.body));
    const streams = server.streams.length;

    await disconnect(proxy.url, server.url);

    const after = await call('tools/call', sessionId, tool);
    assert.equal(after.body?.error?.data?.code, 'upstream_auth_ended', JSON.stringify(after.body));
    await eventually(() => server.streams.slice(0, streams).every((stream) => stream.closed), {
      timeoutMs: 3000,
      what: 'the stream opened with the ended token to close upstream',
    });
  });
});
