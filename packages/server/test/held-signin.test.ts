/**
 * Issue 18 (held-signin): a session the proxy holds to an HTTP+SSE upstream meets the upstream's
 * 401 after it opened. The broker's token is refreshed and the message sent once more; when no
 * token can be had (its refresh refused), the caller is asked to sign in as a stateless call is
 * (`upstream_auth_required` on POST /proxy, -32042 URL elicitation on `/mcp`, an input request
 * for a 2026-07-28 client), never shown `upstream_unauthorized`; once the user signed in, the
 * next message through the same session works. Against the OAuth test world (its upstream in
 * `transport: 'sse'`), with the SDK v1 client on `/mcp`.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ManualClock } from './helpers/manual-clock.ts';
import { mcpFetch, modernHeaders, modernRequest } from './helpers/modern-client.ts';
import { ALICE, BOB, bindAs, type OAuthSetup, setupOAuth } from './helpers/oauth-proxy.ts';
import { postProxy, type Reply } from './helpers/proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const APP = 'http://app.example';
let nextId = 1;

/** `whoami` through POST /proxy to the world's HTTP+SSE upstream, in `sessionId` when given. */
function whoami(s: OAuthSetup, token: string, sessionId?: string): Promise<Reply> {
  return postProxy(
    { url: s.proxy.url, token },
    {
      mcp_server_url: s.world.upstream.url,
      transport: 'sse',
      ...(sessionId === undefined ? {} : { mcp_session_id: sessionId }),
      jsonrpc: '2.0',
      id: nextId++,
      method: 'tools/call',
      params: { name: 'whoami', arguments: {} },
    },
    { origin: APP },
  );
}

/** Opens a held session on POST /proxy as `token`; its id. */
async function openProxySession(s: OAuthSetup, token: string): Promise<string> {
  const opened = await postProxy(
    { url: s.proxy.url, token },
    {
      mcp_server_url: s.world.upstream.url,
      transport: 'sse',
      jsonrpc: '2.0',
      id: nextId++,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    },
    { origin: APP },
  );
  assert.equal(opened.status, 200, JSON.stringify(opened.body));
  const id = opened.headers.get('mcp-session-id');
  assert.ok(id?.startsWith('mcpp-'), `a held session: ${id}`);
  return id as string;
}

/** The `sub` a `whoami` answer (a tools/call result) names. */
function subOf(result: Record<string, unknown>): string {
  const content = result.content as Array<{ text: string }>;
  return JSON.parse((content[0] as { text: string }).text).sub;
}

/** `user` signs in at `url` (a sign-in link), bound for `token` as its app would. */
async function signIn(s: OAuthSetup, user: string, token: string, url: string): Promise<void> {
  assert.ok(url.startsWith(`${s.publicUrl}/oauth/start/`), url);
  const done = await s.world.user(user).authorize(url, { follow: true, bind: bindAs(token) });
  assert.equal(done.callback?.status, 200, done.callback?.body);
}

/** Signs `user` in for `token` from a first refused call. */
async function connect(s: OAuthSetup, token: string, user: string): Promise<void> {
  const refused = await whoami(s, token);
  assert.equal(refused.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
  await signIn(s, user, token, refused.body.error.data.authorizeUrl);
}

/** An SDK v1 client on `/mcp` holding a session to the world's HTTP+SSE upstream. */
async function heldClient(s: OAuthSetup, token: string) {
  const client = new Client({ name: 'held-signin', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${s.proxy.url}/mcp`), {
    requestInit: {
      headers: { 'x-proxy-token': token, 'x-mcp-server-url': s.world.upstream.url, 'x-mcp-transport': 'sse' },
    },
  });
  await client.connect(transport);
  cleanup.push(() => client.close());
  return { client, transport };
}

/** The world's access tokens expire, and its grants are gone: no refresh can replace them. */
function revokeAndExpire(s: OAuthSetup): void {
  s.world.as.forgetGrants();
  s.clock.advance(61_000);
}

describe('held sessions meet the upstream 401 after they opened (issue 18)', () => {
  it('/mcp: a refused refresh asks for a sign-in (-32042); after it the same session serves', async () => {
    const s = await setupOAuth(cleanup, {}, { transport: 'sse' });
    await connect(s, ALICE, 'alice');
    const { client, transport } = await heldClient(s, ALICE);
    const sessionId = transport.sessionId;
    assert.ok(sessionId?.startsWith('mcpp-'), `a held session: ${sessionId}`);
    assert.equal(subOf(await client.callTool({ name: 'whoami', arguments: {} })), 'alice');

    revokeAndExpire(s);
    const refused = await client.callTool({ name: 'whoami', arguments: {} }).then(
      (result) => assert.fail(`answered: ${JSON.stringify(result)}`),
      (error: { code?: number; data?: { elicitations?: Array<{ url: string }> } }) => error,
    );
    assert.equal(refused.code, -32042, JSON.stringify(refused));
    const url = refused.data?.elicitations?.[0]?.url as string;
    await signIn(s, 'alice', ALICE, url);

    assert.equal(subOf(await client.callTool({ name: 'whoami', arguments: {} })), 'alice');
    assert.equal(transport.sessionId, sessionId, 'the same proxy session');
    assert.equal(s.world.upstream.sseStreams(), 1, 'the upstream session opened first still serves');
  });

  it('POST /proxy: a refused refresh answers upstream_auth_required; after the sign-in the session serves', async () => {
    const s = await setupOAuth(cleanup, {}, { transport: 'sse' });
    await connect(s, ALICE, 'alice');
    const sessionId = await openProxySession(s, ALICE);
    revokeAndExpire(s);
    const refused = await whoami(s, ALICE, sessionId);
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.equal(refused.body.error.data.code, 'upstream_auth_required', JSON.stringify(refused.body));
    await signIn(s, 'alice', ALICE, refused.body.error.data.authorizeUrl);
    const served = await whoami(s, ALICE, sessionId);
    assert.equal(served.status, 200, JSON.stringify(served.body));
    assert.equal(subOf(served.body.result), 'alice');
  });

  it('a token the upstream refuses early is refreshed and the message sent once more, per principal', async () => {
    // The upstream's clock runs ahead of the proxy's: it refuses tokens the proxy deems valid.
    const upstreamClock = new ManualClock();
    const s = await setupOAuth(cleanup, {}, { transport: 'sse', clock: upstreamClock });
    await connect(s, ALICE, 'alice');
    await connect(s, BOB, 'bob');
    const alice = await heldClient(s, ALICE);
    const bob = await heldClient(s, BOB);
    const aliceProxy = await openProxySession(s, ALICE);
    upstreamClock.advance(61_000);
    const refreshes = () => s.world.as.events.filter((e) => e === 'token:refresh_token').length;

    assert.equal(subOf(await alice.client.callTool({ name: 'whoami', arguments: {} })), 'alice');
    assert.equal(refreshes(), 1);
    assert.equal(subOf(await bob.client.callTool({ name: 'whoami', arguments: {} })), 'bob');
    assert.equal(refreshes(), 2, "bob's session refreshed bob's token, not alice's");
    const served = await whoami(s, ALICE, aliceProxy);
    assert.equal(served.status, 200, JSON.stringify(served.body));
    assert.equal(subOf(served.body.result), 'alice');
    assert.equal(refreshes(), 2, "alice's refreshed token reached her other session");
  });

  it('/mcp, a 2026-07-28 client of the HTTP+SSE upstream (pooled): asked to sign in, then served', async () => {
    const s = await setupOAuth(cleanup, {}, { transport: 'sse' });
    await connect(s, ALICE, 'alice');
    const call = async (id: number, params: Record<string, unknown>) => {
      const message = modernRequest(id, 'tools/call', params, {
        'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } },
      });
      const response = await mcpFetch({ url: s.proxy.url, token: ALICE }, s.world.upstream.url, {
        body: message,
        headers: { ...modernHeaders(message), 'x-mcp-transport': 'sse' },
      });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return JSON.parse(text);
    };
    const first = await call(1, { name: 'whoami', arguments: {} });
    assert.equal(subOf(first.result), 'alice', JSON.stringify(first));

    revokeAndExpire(s);
    const asked = await call(2, { name: 'whoami', arguments: {} });
    assert.equal(asked.result?.resultType, 'input_required', JSON.stringify(asked));
    const request = asked.result.inputRequests['mcp-proxy/sign-in'];
    await signIn(s, 'alice', ALICE, request.params.url);
    const retry = {
      name: 'whoami',
      arguments: {},
      requestState: asked.result.requestState,
      inputResponses: { 'mcp-proxy/sign-in': { action: 'accept' } },
    };
    const served = await call(3, retry);
    assert.equal(subOf(served.result), 'alice', JSON.stringify(served));
  });
});

/** `whoami` through POST /proxy as a 2026-07-28 caller: pooled in a session the proxy holds. */
function modernWhoami(s: OAuthSetup, token: string): Promise<Reply> {
  return postProxy(
    { url: s.proxy.url, token },
    {
      mcp_server_url: s.world.upstream.url,
      transport: 'sse',
      ...modernRequest(nextId++, 'tools/call', { name: 'whoami', arguments: {} }),
    },
    { origin: APP },
  );
}

describe('pooled sessions of POST /proxy meet the upstream 401 after they opened (issue 18)', () => {
  it('a token the upstream refuses early is refreshed once and the call sent once more', async () => {
    const upstreamClock = new ManualClock();
    const s = await setupOAuth(cleanup, {}, { transport: 'sse', clock: upstreamClock });
    await connect(s, ALICE, 'alice');
    const first = await modernWhoami(s, ALICE);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(subOf(first.body.result), 'alice', JSON.stringify(first.body));
    const refreshes = () => s.world.as.events.filter((e) => e === 'token:refresh_token').length;
    upstreamClock.advance(61_000);
    const served = await modernWhoami(s, ALICE);
    assert.equal(served.status, 200, JSON.stringify(served.body));
    assert.equal(subOf(served.body.result), 'alice');
    assert.equal(refreshes(), 1, 'refreshed once');
    assert.equal(s.world.upstream.sseStreams(), 1, 'the pooled session opened first still serves');
  });

  it('a refused refresh answers upstream_auth_required; after the sign-in the pooled session serves', async () => {
    const s = await setupOAuth(cleanup, {}, { transport: 'sse' });
    await connect(s, ALICE, 'alice');
    assert.equal((await modernWhoami(s, ALICE)).status, 200);
    revokeAndExpire(s);
    const refused = await modernWhoami(s, ALICE);
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.equal(refused.body.error.data.code, 'upstream_auth_required', JSON.stringify(refused.body));
    await signIn(s, 'alice', ALICE, refused.body.error.data.authorizeUrl);
    const served = await modernWhoami(s, ALICE);
    assert.equal(served.status, 200, JSON.stringify(served.body));
    assert.equal(subOf(served.body.result), 'alice');
  });
});

/**
 * `whoami` on `/mcp` as a 2026-07-28 caller of the world's HTTP+SSE upstream (pooled): its answer,
 * from JSON or (`progressToken` given: the request asks for progress) from the event stream.
 */
async function mcpWhoami(s: OAuthSetup, id: number, progressToken?: string) {
  const meta = progressToken === undefined ? {} : { progressToken };
  const message = modernRequest(id, 'tools/call', { name: 'whoami', arguments: {} }, meta);
  const response = await mcpFetch({ url: s.proxy.url, token: ALICE }, s.world.upstream.url, {
    body: message,
    headers: { ...modernHeaders(message), 'x-mcp-transport': 'sse' },
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  if (progressToken === undefined) return JSON.parse(text);
  assert.match(String(response.headers.get('content-type')), /text\/event-stream/);
  const events = text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice('data: '.length)));
  return events.find((event) => event.id === id && !('method' in event));
}

describe('pooled sessions of /mcp meet the upstream 401 after they opened (issue 18)', () => {
  for (const answer of ['JSON', 'an event stream'] as const) {
    it(`a token the upstream refuses early is refreshed once and the call sent once more (${answer})`, async () => {
      const upstreamClock = new ManualClock();
      const s = await setupOAuth(cleanup, {}, { transport: 'sse', clock: upstreamClock });
      await connect(s, ALICE, 'alice');
      const progress = answer === 'JSON' ? undefined : 'p';
      const first = await mcpWhoami(s, 1, progress);
      assert.equal(subOf(first.result), 'alice', JSON.stringify(first));
      upstreamClock.advance(61_000);
      const served = await mcpWhoami(s, 2, progress);
      assert.ok(served?.result, JSON.stringify(served));
      assert.equal(subOf(served.result), 'alice');
      assert.equal(s.world.as.events.filter((e) => e === 'token:refresh_token').length, 1, 'refreshed once');
      assert.equal(s.world.upstream.sseStreams(), 1, 'the pooled session opened first still serves');
    });
  }
});
