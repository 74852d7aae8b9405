/**
 * Issue 17: what a principal opens is its own. Alice and Bob get minted tokens from the same app
 * (the same admin token); a session Alice opened is "not found" for Bob on every surface — sealed
 * pass-through ids and proxy-held sessions on /mcp and POST /proxy, pooled modern sessions and
 * requestState handles — while Alice's next token (same subject) carries on with it. Revoking the
 * token that opened a held session ends that session. Real server-everything upstreams.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { ADMIN, keyFile, mint, revoke } from './helpers/minted.ts';
import { connectWs, ELICIT_ANSWER, mcpFetch, modernHeaders, modernRequest } from './helpers/modern-client.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingRelay, startRecordingRelay } from './helpers/recording-relay.ts';

const VERSION = '2025-06-18';
const APP = 'https://app.example.test';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 'init',
  method: 'initialize',
  params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'isolation', version: '1' } },
};
const PING = { jsonrpc: '2.0', id: 'ping', method: 'ping' };
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };

/** A /mcp POST for `url` with `token` as a bearer credential and an optional session id. */
async function mcp(proxy: RunningProxy, url: string, token: string, body: unknown, sessionId?: string) {
  const response = await fetch(`${proxy.url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'x-mcp-server-url': url,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      ...(sessionId === undefined ? {} : { 'mcp-session-id': sessionId, 'mcp-protocol-version': VERSION }),
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, sessionId: response.headers.get('mcp-session-id') ?? undefined, text };
}

/** Opens a session on /mcp as `token`; returns the id the caller got. */
async function openOnMcp(proxy: RunningProxy, url: string, token: string): Promise<string> {
  const init = await mcp(proxy, url, token, INITIALIZE);
  assert.equal(init.status, 200, init.text);
  assert.ok(init.sessionId);
  assert.equal((await mcp(proxy, url, token, INITIALIZED, init.sessionId)).status, 202);
  return init.sessionId;
}

describe('principal isolation with minted tokens', () => {
  let sse: EverythingServer;
  let streamable: EverythingServer;
  let relay: RecordingRelay;
  let proxy: RunningProxy;
  let alice: string;
  let aliceAgain: string;
  let bob: string;
  before(async () => {
    [sse, streamable] = await Promise.all([startEverything('sse'), startEverything('streamableHttp')]);
    relay = await startRecordingRelay(streamable.url);
    proxy = await startProxy({
      ADMIN_TOKEN: ADMIN,
      SIGNING_KEYS: keyFile(),
      SESSION_SECRET: 'isolation-session-secret-0123456789abcdef0123',
      CORS_ORIGINS: APP,
    });
    alice = (await mint(proxy.url, 'alice')).token;
    aliceAgain = (await mint(proxy.url, 'alice')).token;
    bob = (await mint(proxy.url, 'bob')).token;
  });
  after(async () => {
    await proxy.close();
    await relay.stop();
    await Promise.all([sse.stop(), streamable.stop()]);
  });

  it("/mcp: a sealed pass-through session is not found for bob, and continues with alice's next token", async () => {
    const sealed = await openOnMcp(proxy, relay.url, alice);
    assert.doesNotMatch(sealed, /^mcpp-/, 'a pass-through (sealed) id');
    const forwarded = relay.forwarded.length;
    assert.equal((await mcp(proxy, relay.url, bob, PING, sealed)).status, 404);
    assert.equal(relay.forwarded.length, forwarded, "nothing of bob's reached the upstream");
    const continued = await mcp(proxy, relay.url, aliceAgain, PING, sealed);
    assert.equal(continued.status, 200, continued.text);
  });

  it('/mcp and POST /proxy: a proxy-held session is not found for bob, and continues for alice', async () => {
    const held = await openOnMcp(proxy, sse.url, alice);
    assert.match(held, /^mcpp-/, 'a proxy-held session');
    assert.equal((await mcp(proxy, sse.url, bob, PING, held)).status, 404);
    const viaProxy = await postProxy(
      { url: proxy.url, token: bob },
      { ...PING, mcp_server_url: sse.url, mcp_session_id: held },
    );
    assert.equal(viaProxy.status, 404);
    assert.equal((await mcp(proxy, sse.url, aliceAgain, PING, held)).status, 200);
  });

  it('revoking the token that opened a held session ends the session', async () => {
    const opener = await mint(proxy.url, 'alice');
    const held = await openOnMcp(proxy, sse.url, opener.token);
    assert.equal((await mcp(proxy, sse.url, aliceAgain, PING, held)).status, 200);
    const kept = await openOnMcp(proxy, sse.url, aliceAgain);
    assert.equal(await revoke(proxy.url, opener.id), 204);
    assert.equal(
      (await mcp(proxy, sse.url, aliceAgain, PING, held)).status,
      404,
      "the revoked token's session ended",
    );
    assert.equal(
      (await mcp(proxy, sse.url, aliceAgain, PING, kept)).status,
      200,
      "another token's session stays",
    );
  });

  it("/mcp modern: pooled sessions are per subject, and a requestState handle is not bob's to use", async () => {
    // The token travels as a bearer credential; X-Proxy-Token stays empty.
    const call = async (token: string, body: ReturnType<typeof modernRequest>) => {
      const response = await mcpFetch({ url: proxy.url, token: '' }, relay.url, {
        body,
        headers: { ...modernHeaders(body), accept: 'application/json', authorization: `Bearer ${token}` },
      });
      return (await response.json()) as {
        result?: {
          resultType: string;
          inputRequests: Record<string, unknown>;
          requestState: string;
          content?: unknown;
        };
        error?: { code: number; message: string };
      };
    };
    // Every upstream answer repeats its session id: count distinct ones.
    const sessions = () => new Set(relay.issued).size;
    const issued = sessions();
    const echo = (id: number) =>
      modernRequest(id, 'tools/call', { name: 'echo', arguments: { message: 'hi' } });
    assert.ok((await call(alice, echo(1))).result);
    const afterAlice = sessions();
    assert.ok(afterAlice > issued, "alice's first modern call opened an upstream session");
    assert.ok((await call(aliceAgain, echo(2))).result);
    assert.equal(sessions(), afterAlice, "alice's next token reuses her pooled session");
    assert.ok((await call(bob, echo(3))).result);
    assert.ok(sessions() > afterAlice, 'bob gets a pooled session of his own');

    const elicit = modernRequest(7, 'tools/call', { name: 'trigger-elicitation-request', arguments: {} });
    const pending = await call(alice, elicit);
    assert.equal(pending.result?.resultType, 'input_required', JSON.stringify(pending));
    const [key] = Object.keys(pending.result?.inputRequests ?? {});
    const retry = (id: number) =>
      modernRequest(id, 'tools/call', {
        name: 'trigger-elicitation-request',
        arguments: {},
        inputResponses: { [key as string]: ELICIT_ANSWER },
        requestState: pending.result?.requestState,
      });
    const stolen = await call(bob, retry(8));
    assert.equal(stolen.error?.code, -32602, JSON.stringify(stolen));
    const done = await call(aliceAgain, retry(9));
    assert.equal(done.result?.resultType, 'complete', JSON.stringify(done));
  });

  it("/ws: a requestState handle from alice's socket is not bob's to use", async () => {
    const alicePeer = await connectWs({ url: proxy.url, token: alice }, streamable.url, APP);
    const bobPeer = await connectWs({ url: proxy.url, token: bob }, streamable.url, APP);
    try {
      alicePeer.send(
        modernRequest('ask', 'tools/call', { name: 'trigger-elicitation-request', arguments: {} }),
      );
      const pending = await alicePeer.next((f) => f.id === 'ask');
      assert.equal(pending.result?.resultType, 'input_required', JSON.stringify(pending));
      const [key] = Object.keys(pending.result.inputRequests);
      const retry = (id: string) =>
        modernRequest(id, 'tools/call', {
          name: 'trigger-elicitation-request',
          arguments: {},
          inputResponses: { [key as string]: ELICIT_ANSWER },
          requestState: pending.result.requestState,
        });
      bobPeer.send(retry('steal'));
      const stolen = await bobPeer.next((f) => f.id === 'steal');
      assert.equal(stolen.error?.code, -32602, JSON.stringify(stolen));
      alicePeer.send(retry('own'));
      const done = await alicePeer.next((f) => f.id === 'own');
      assert.equal(done.result?.resultType, 'complete', JSON.stringify(done));
    } finally {
      await Promise.all([alicePeer.close(), bobPeer.close()]);
    }
  });
});
