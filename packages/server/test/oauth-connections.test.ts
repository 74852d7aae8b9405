/**
 * Issue 18, item 4 and step-up: a principal lists its upstream OAuth connections
 * (`GET /oauth/connections`, never a token) and ends one (`DELETE /oauth/connections/{server}`:
 * RFC 7009 revocation at the authorization server, then deleted from the vault); a token that
 * lacks a scope (403 `insufficient_scope`) asks the user again for the union of the scopes.
 * Against the OAuth test world: oidc-provider with revocation, an SDK upstream whose `admin` tool
 * needs `mcp:admin`.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import {
  ALICE,
  authorizeUrlOf,
  BOB,
  bindAs,
  callTool,
  connect,
  type OAuthSetup,
  scopesAsked,
  setupOAuth,
  subjectOf,
  upstreamTokens,
} from './helpers/oauth-proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function connections(s: OAuthSetup, token: string, init: RequestInit = {}, path = '') {
  const response = await fetch(`${s.proxy.url}/oauth/connections${path}`, {
    ...init,
    headers: { 'x-proxy-token': token, ...init.headers },
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
  return { status: response.status, text, body: (text === '' ? undefined : JSON.parse(text)) as any };
}

describe('GET /oauth/connections and DELETE /oauth/connections/{server}', () => {
  it("lists the caller's connections with issuer, scopes and expiry, and never a token", async () => {
    const s = await setupOAuth(cleanup);
    assert.deepEqual((await connections(s, ALICE)).body, { connections: [] });
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
    const listed = await connections(s, ALICE);
    assert.equal(listed.status, 200, listed.text);
    const server = new URL(s.world.upstream.url).host;
    assert.deepEqual(listed.body.connections, [
      {
        server,
        resource: s.world.upstream.url,
        issuer: s.world.issuer,
        scopes: ['mcp:read'],
        expiresAt: new Date(s.clock.now() + 60_000).toISOString(),
        refreshable: true,
      },
    ]);
    const [token] = upstreamTokens(s);
    assert.ok(token);
    const refresh = s.world.as.stored('RefreshToken');
    assert.equal(refresh.length, 1);
    for (const secret of [token, ...refresh]) assert.ok(!listed.text.includes(secret), 'a token was listed');
    // Bob is another principal: he sees nothing of alice's.
    assert.deepEqual((await connections(s, BOB)).body, { connections: [] });
    // No proxy credential, no list.
    assert.equal((await fetch(`${s.proxy.url}/oauth/connections`)).status, 401);
  });

  it('disconnects: revokes at the authorization server (RFC 7009), deletes, and asks again', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
    assert.equal(s.world.as.stored('RefreshToken').length, 1);
    const server = new URL(s.world.upstream.url).host;

    // Bob cannot end alice's connection: for him there is none.
    const refused = await connections(s, BOB, { method: 'DELETE' }, `/${encodeURIComponent(server)}`);
    assert.equal(refused.status, 404, refused.text);
    assert.equal(refused.body.error.data.code, 'oauth_connection_not_found');
    assert.equal(refused.body.error.code, -33210);
    assert.equal((await connections(s, ALICE)).body.connections.length, 1);

    const ended = await connections(s, ALICE, { method: 'DELETE' }, `/${encodeURIComponent(server)}`);
    assert.equal(ended.status, 200, ended.text);
    assert.deepEqual(ended.body, {
      disconnected: [{ server, resource: s.world.upstream.url, revocation: 'revoked' }],
    });
    // The authorization server ended the grant's refresh token: the revocation reached it.
    assert.ok(s.world.as.events.includes('revoke'));
    assert.deepEqual(s.world.as.stored('RefreshToken'), []);
    assert.deepEqual((await connections(s, ALICE)).body, { connections: [] });
    // The vault forgot it: the next call asks alice to sign in again.
    authorizeUrlOf(s, await callTool(s, ALICE, 'whoami'));
    const again = await connections(s, ALICE, { method: 'DELETE' }, `/${encodeURIComponent(server)}`);
    assert.equal(again.status, 404);
    assert.ok(!s.proxy.logs.join('\n').includes(upstreamTokens(s)[0] as string));
  });

  it('names a connection by its resource URL too, and keeps other connections', async () => {
    const s = await setupOAuth(cleanup, {}, { extraScopes: ['files:read'] });
    const other = await s.world.startUpstream({ scopesSupported: ['files:read'] });
    await connect(s, ALICE, 'alice');
    await connect(s, ALICE, 'alice', other.url);
    assert.equal((await connections(s, ALICE)).body.connections.length, 2);
    const ended = await connections(s, ALICE, { method: 'DELETE' }, `/${encodeURIComponent(other.url)}`);
    assert.equal(ended.status, 200, ended.text);
    assert.equal(ended.body.disconnected[0].resource, other.url);
    const left = (await connections(s, ALICE)).body.connections;
    assert.deepEqual(
      left.map((c: { resource: string }) => c.resource),
      [s.world.upstream.url],
    );
    assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
  });

  for (const [offered, endpoint, outcome] of [
    ['does not offer revocation', null, 'not_offered'],
    ['names a revocation endpoint the egress guard refuses', 'https://169.254.169.254/revoke', 'failed'],
  ] as const) {
    it(`forgets the tokens anyway when the authorization server ${offered}`, async () => {
      const s = await setupOAuth(cleanup, {}, { revocationEndpoint: endpoint });
      await connect(s, ALICE, 'alice');
      const server = new URL(s.world.upstream.url).host;
      const ended = await connections(s, ALICE, { method: 'DELETE' }, `/${encodeURIComponent(server)}`);
      assert.equal(ended.status, 200, ended.text);
      assert.equal(ended.body.disconnected[0].revocation, outcome);
      assert.ok(!s.world.as.events.includes('revoke'));
      assert.deepEqual((await connections(s, ALICE)).body, { connections: [] });
      authorizeUrlOf(s, await callTool(s, ALICE, 'whoami'));
    });
  }

  it('waits for a refresh in flight, so the refreshed tokens are not put back after the delete', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    s.clock.advance(61_000);
    const release = s.world.as.holdTokenResponses();
    cleanup.push(release);
    // The call refreshes: the authorization server rotates the refresh token, its answer is held.
    const call = callTool(s, ALICE, 'whoami');
    await eventually(() => s.world.as.events.includes('token:refresh_token'), { what: 'the refresh' });
    const server = new URL(s.world.upstream.url).host;
    const ended = connections(s, ALICE, { method: 'DELETE' }, `/${encodeURIComponent(server)}`);
    // Something must not happen, so a bound: the disconnect does not end while the refresh runs.
    const early = await Promise.race([
      ended.then(() => 'ended'),
      new Promise((resolve) => setTimeout(resolve, 400, 'waiting')),
    ]);
    assert.equal(early, 'waiting', 'the disconnect ran beside the refresh');
    release();
    assert.equal(subjectOf(await call), 'alice');
    const done = await ended;
    assert.equal(done.status, 200, done.text);
    // It revoked what the refresh stored (the rotated refresh token), and nothing came back.
    assert.equal(done.body.disconnected[0].revocation, 'revoked');
    assert.deepEqual(s.world.as.stored('RefreshToken'), []);
    assert.deepEqual((await connections(s, ALICE)).body, { connections: [] });
    authorizeUrlOf(s, await callTool(s, ALICE, 'whoami'));
  });

  it('drops a connection whose tokens the vault no longer holds (refresh refused)', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    s.world.as.forgetGrants();
    s.clock.advance(61_000);
    authorizeUrlOf(s, await callTool(s, ALICE, 'whoami'));
    assert.deepEqual((await connections(s, ALICE)).body, { connections: [] });
  });
});

describe('step-up on 403 insufficient_scope', () => {
  it('POST /proxy: asks again for the union of the scopes, then the call succeeds', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    const refused = await callTool(s, ALICE, 'admin');
    const url = authorizeUrlOf(s, refused);
    assert.deepEqual(await scopesAsked(url, ALICE), ['mcp:admin', 'mcp:read']);
    // The token held still serves what it can meanwhile.
    assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
    const url2 = authorizeUrlOf(s, await callTool(s, ALICE, 'admin'));
    const done = await s.world.user('alice').authorize(url2, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(done.sawConsent, true, 'the new scope needs consent');
    const admin = await callTool(s, ALICE, 'admin');
    assert.equal(admin.status, 200, JSON.stringify(admin.body));
    assert.equal(admin.body.result.content[0].text, 'admin ok');
    const [listed] = (await connections(s, ALICE)).body.connections;
    assert.deepEqual(listed.scopes.sort(), ['mcp:admin', 'mcp:read']);
  });

  it("leaves the 403 to a caller's own token to the caller (the broker acts only for its tokens)", async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
    const [token] = upstreamTokens(s);
    const own = await fetch(`${s.proxy.url}/proxy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-proxy-token': BOB },
      body: JSON.stringify({
        mcp_server_url: s.world.upstream.url,
        mcp_token: token,
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'admin', arguments: {} },
      }),
    });
    const body = (await own.json()) as { error: { data: { code: string } } };
    assert.equal(own.status, 403, JSON.stringify(body));
    assert.equal(body.error.data.code, 'upstream_unauthorized');
    assert.match(String(own.headers.get('www-authenticate')), /insufficient_scope/);
  });

  it('/mcp: a 2025 client gets URL elicitation required (-32042) for the step-up', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    const client = new Client({ name: 'step-up-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${s.proxy.url}/mcp`), {
      requestInit: { headers: { 'x-proxy-token': ALICE, 'x-mcp-server-url': s.world.upstream.url } },
    });
    await client.connect(transport);
    cleanup.push(() => client.close());
    const error = await client.callTool({ name: 'admin', arguments: {} }).then(
      () => assert.fail('the admin tool ran without the scope'),
      (e: { code?: number; data?: { elicitations?: Array<{ url: string }> } }) => e,
    );
    assert.equal(error.code, -32042);
    const url = error.data?.elicitations?.[0]?.url as string;
    const done = await s.world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    const result = await client.callTool({ name: 'admin', arguments: {} });
    assert.deepEqual(result.content, [{ type: 'text', text: 'admin ok' }]);
  });

  it('/ws: the step-up travels in an error frame', async () => {
    const s = await setupOAuth(cleanup, {});
    await connect(s, ALICE, 'alice');
    const query = new URLSearchParams({ mcp_server_url: s.world.upstream.url, transport: 'streamable-http' });
    const ws = new WebSocket(
      `${s.proxy.url.replace('http', 'ws')}/ws?${query}`,
      ['mcp', `proxy-token.${ALICE}`],
      {
        origin: 'http://app.example',
      },
    );
    cleanup.push(() => ws.close());
    // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const send = (message: unknown) => ws.send(JSON.stringify(message));
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'admin', arguments: {} } });
    const deadline = Date.now() + 10_000;
    while (!frames.some((f) => f.id === 2) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const frame = frames.find((f) => f.id === 2);
    assert.equal(frame?.error?.data?.code, 'upstream_auth_required', JSON.stringify(frames));
    assert.deepEqual(await scopesAsked(frame.error.data.authorizeUrl, ALICE), ['mcp:admin', 'mcp:read']);
  });
});
