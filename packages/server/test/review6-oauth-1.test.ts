/**
 * Review 6 (OAuth broker), finding OAUTH-1: ending a connection (DELETE /oauth/connections) does
 * not reach a session the proxy HOLDS for the caller (POST /proxy or /mcp `initialize` to an
 * HTTP+SSE or WebSocket upstream): the held session keeps the access token it was opened with
 * and keeps sending it upstream after the user disconnected. Review oauth6 R1 fixed this for /ws
 * sockets only (an end mark read per frame); held sessions take `bearerToken` as a fixed string
 * (surfaces/proxy/forwarder.ts:127, surfaces/mcp/brokered-sign-in.ts:71, dispatch/connector.ts:107).
 * The authorization server here offers no revocation endpoint (revocation `not_offered`), as
 * with a resource server that checks JWT access tokens itself: only the proxy can stop using it.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ALICE, APP } from './helpers/oauth-proxy.ts';
import { disconnect, signInFrom, startBrokerProxy, startOAuthSseServer } from './helpers/oauth-sse-server.ts';
import { postProxy } from './helpers/proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

// biome-ignore lint/suspicious/noExplicitAny: JSON-RPC answers are arbitrary JSON.
type Json = any;

let nextId = 1;
function call(proxyUrl: string, serverUrl: string, method: string, sessionId?: string, params: Json = {}) {
  return postProxy(
    { url: proxyUrl, token: ALICE },
    {
      mcp_server_url: serverUrl,
      transport: 'sse',
      ...(sessionId === undefined ? {} : { mcp_session_id: sessionId }),
      jsonrpc: '2.0',
      id: nextId++,
      method,
      params,
    },
    { origin: APP },
  );
}

/** A proxy with the broker on, and alice signed in to a fresh OAuth-protected HTTP+SSE server. */
async function signedIn() {
  const world = await startOAuthSseServer(cleanup);
  const serverUrl = world.url;
  const { proxy, publicUrl } = await startBrokerProxy(cleanup);
  await signInFrom(publicUrl, await call(proxy.url, serverUrl, 'tools/list'));
  return { world, serverUrl, proxy };
}

/** Opens a session the proxy holds on POST /proxy; returns its id. */
async function openSession(proxyUrl: string, serverUrl: string): Promise<string> {
  const opened = await call(proxyUrl, serverUrl, 'initialize', undefined, {
    protocolVersion: '2024-11-05',
    capabilities: {},
    clientInfo: { name: 't', version: '1' },
  });
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const sessionId = opened.headers.get('mcp-session-id') ?? undefined;
  assert.ok(sessionId?.startsWith('mcpp-'), `a held session: ${sessionId}`);
  return sessionId as string;
}

describe('OAUTH-1: a disconnect reaches sessions the proxy holds, not only /ws sockets', () => {
  it('POST /proxy: a held HTTP+SSE session stops sending the token once the user disconnected', async () => {
    const { world, serverUrl, proxy } = await signedIn();
    const sessionId = await openSession(proxy.url, serverUrl);
    const first = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    assert.equal(first.body?.result?.content?.[0]?.text, 'served', JSON.stringify(first.body));

    const ended = await disconnect(proxy.url, serverUrl);
    assert.equal(ended.disconnected[0].revocation, 'not_offered');
    const before = world.posts.length;

    // The user ended the connection: the held session must not serve with its token any more.
    const after = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    const sent = world.posts.slice(before).filter((p) => p.authorization === 'Bearer at-1');
    assert.deepEqual(sent, [], "the ended connection's token went upstream after the disconnect");
    assert.equal(after.body?.result, undefined, JSON.stringify(after.body));
    assert.equal(after.body?.error?.data?.code, 'upstream_auth_ended', JSON.stringify(after.body));
    const again = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    assert.equal(again.body?.error?.data?.code, 'session_not_found', JSON.stringify(again.body));
  });

  it('POST /proxy: a held HTTP+SSE session sends the token a refresh stored, not the one it opened with', async () => {
    const { world, serverUrl, proxy } = await signedIn();
    const sessionId = await openSession(proxy.url, serverUrl);

    // The server stops taking at-1: the proxy refreshes (at-2) and the held session must use it.
    world.rotate();
    const before = world.posts.length;
    const after = await call(proxy.url, serverUrl, 'tools/call', sessionId, { name: 'x', arguments: {} });
    assert.equal(after.body?.result?.content?.[0]?.text, 'served', JSON.stringify(after.body));
    assert.deepEqual(
      world.posts.slice(before).map((p) => p.authorization),
      ['Bearer at-1', 'Bearer at-2'],
    );
  });

  it('/mcp: a held HTTP+SSE session stops sending the token once the user disconnected', async () => {
    const { world, serverUrl, proxy } = await signedIn();

    const mcp = async (message: Json, sessionId?: string) => {
      const response = await fetch(`${proxy.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-proxy-token': ALICE,
          'x-mcp-server-url': serverUrl,
          'x-mcp-transport': 'sse',
          'mcp-protocol-version': '2025-06-18',
          origin: APP,
          ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId }),
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, ...message }),
      });
      const text = await response.text();
      return { status: response.status, sessionId: response.headers.get('mcp-session-id'), body: text };
    };
    const opened = await mcp({
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(opened.status, 200, opened.body);
    const sessionId = opened.sessionId ?? undefined;
    assert.ok(sessionId?.startsWith('mcpp-'), `a held session: ${sessionId}`);
    const first = await mcp({ method: 'tools/call', params: { name: 'x', arguments: {} } }, sessionId);
    assert.match(first.body, /served/);

    await disconnect(proxy.url, serverUrl);
    const before = world.posts.length;

    const after = await mcp({ method: 'tools/call', params: { name: 'x', arguments: {} } }, sessionId);
    const sent = world.posts.slice(before).filter((p) => p.authorization === 'Bearer at-1');
    assert.deepEqual(sent, [], "the ended connection's token went upstream after the disconnect");
    assert.doesNotMatch(after.body, /served/);
    // Streamable HTTP's signal that the session is gone (initialize again), saying why.
    assert.equal(after.status, 404, after.body);
    assert.equal(JSON.parse(after.body).error?.data?.code, 'upstream_auth_ended', after.body);
  });
});
