/**
 * Review 7 (credentials), finding CREDS-2: the sessions the proxy pools for 2026-07-28 clients of
 * a session-era server (sessions/modern-pool.ts) were keyed by the broker's token and never read
 * it again: after DELETE /oauth/connections the one opened with the ended token stayed open
 * upstream (its HTTP+SSE stream, a long `subscriptions/listen`) beside a new one, and each refresh
 * opened another pooled session. A pooled session now holds the broker's credential and renews it
 * before each request goes through it.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { modernRequest } from './helpers/modern-client.ts';
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

/**
 * A proxy with the broker on, alice signed in to a fresh server whose tokens live a minute; `call`
 * is a modern tools/call; the proxy's time is `clock`'s.
 */
async function signedIn() {
  const server = await startOAuthSseServer(cleanup, 60);
  const clock = new ManualClock();
  const { proxy, publicUrl } = await startBrokerProxy(cleanup, {}, { clock });
  let id = 1;
  const call = () =>
    proxyCall(
      proxy.url,
      { mcp_server_url: server.url, transport: 'sse' },
      modernRequest(id++, 'tools/call', { name: 'x', arguments: {} }),
    );
  await signInFrom(publicUrl, await call());
  const served = await call();
  assert.equal(served.body?.result?.content?.[0]?.text, 'served', JSON.stringify(served.body));
  assert.equal(server.streams.length, 1, 'one pooled session, opened with at-1');
  return { server, proxy, call, clock };
}

describe('CREDS-2: a pooled session for modern clients follows the broker credential', () => {
  it('a disconnect closes the pooled session opened with the ended token', async () => {
    const { server, proxy, call } = await signedIn();
    await disconnect(proxy.url, server.url);
    const before = server.posts.length;

    const after = await call();
    assert.equal(after.body?.result, undefined, JSON.stringify(after.body));
    const sent = server.posts.slice(before).filter((post) => post.authorization === 'Bearer at-1');
    assert.deepEqual(sent, [], "the ended connection's token went upstream after the disconnect");
    await eventually(() => server.streams[0]?.closed, {
      timeoutMs: 3000,
      what: 'the stream opened with the ended token to close upstream',
    });
  });

  it('a refresh reaches the pooled session: no second session, the new token upstream', async () => {
    const { server, call, clock } = await signedIn();
    server.rotate();
    // The token is due for refresh (a minute's life, refreshed ahead of its end).
    clock.advance(50_000);
    const before = server.posts.length;

    const after = await call();
    assert.equal(after.body?.result?.content?.[0]?.text, 'served', JSON.stringify(after.body));
    assert.equal(server.streams.length, 1, 'the refresh opened another pooled session');
    assert.equal(server.streams[0]?.closed, false);
    const last = server.posts.slice(before).at(-1);
    assert.equal(last?.authorization, 'Bearer at-2', JSON.stringify(server.posts.slice(before)));
  });
});
