/**
 * Issue 18: on `/mcp`, a 2026-07-28 client is asked to sign in through the multi-round-trip flow
 * (that revision has no -32042): an `InputRequiredResult` whose `mcp-proxy/sign-in` input request
 * is a URL-mode elicitation of the broker's `authorizeUrl`, and whose `requestState` the proxy
 * takes back off the retry. Raw modern requests, and the SDK v2 client whose elicitation handler
 * signs the user in (a step-up) and whose retry then succeeds.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { MODERN, mcpFetch, modernHeaders, modernRequest } from './helpers/modern-client.ts';
import { ALICE, BOB, bindAs, connect, type OAuthSetup, setupOAuth } from './helpers/oauth-proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const URL_CAPABLE = { elicitation: { url: {} } };

/** A modern request for the world's upstream through `/mcp`, as `token`; its JSON answer. */
async function modern(
  s: OAuthSetup,
  token: string,
  id: number,
  method: string,
  params: Record<string, unknown>,
  capabilities: Record<string, unknown> = URL_CAPABLE,
) {
  const message = modernRequest(id, method, params, {
    'io.modelcontextprotocol/clientCapabilities': capabilities,
  });
  const response = await mcpFetch({ url: s.proxy.url, token }, s.world.upstream.url, {
    body: message,
    headers: modernHeaders(message),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
  return JSON.parse(text) as any;
}

describe('/mcp: a 2026-07-28 client is asked to sign in with a URL-mode input request', () => {
  it('answers input_required with the sign-in URL, and serves the retry once signed in', async () => {
    const s = await setupOAuth(cleanup);
    const first = await modern(s, ALICE, 1, 'tools/call', { name: 'whoami', arguments: {} });
    assert.equal(first.error, undefined, JSON.stringify(first));
    assert.equal(first.result.resultType, 'input_required');
    const request = first.result.inputRequests['mcp-proxy/sign-in'];
    assert.equal(request.method, 'elicitation/create');
    assert.equal(request.params.mode, 'url');
    assert.ok(request.params.url.startsWith(`${s.publicUrl}/oauth/start/`), request.params.url);
    const handle: string = first.result.requestState;
    assert.ok(handle.startsWith('mcpp-auth.'));
    const done = await s.world
      .user('alice')
      .authorize(request.params.url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    const retry = {
      name: 'whoami',
      arguments: {},
      requestState: handle,
      inputResponses: { 'mcp-proxy/sign-in': { action: 'accept' } },
    };
    // Another principal cannot use alice's handle.
    const stolen = await modern(s, BOB, 2, 'tools/call', retry);
    assert.equal(stolen.error?.data?.code, 'oauth_state_invalid', JSON.stringify(stolen));
    const served = await modern(s, ALICE, 3, 'tools/call', retry);
    assert.equal(served.error, undefined, JSON.stringify(served));
    assert.equal(JSON.parse(served.result.content[0].text).sub, 'alice');
  });

  it('ends the call when the user declines', async () => {
    const s = await setupOAuth(cleanup);
    const first = await modern(s, ALICE, 1, 'tools/call', { name: 'whoami', arguments: {} });
    const declined = await modern(s, ALICE, 2, 'tools/call', {
      name: 'whoami',
      arguments: {},
      requestState: first.result.requestState,
      inputResponses: { 'mcp-proxy/sign-in': { action: 'decline' } },
    });
    assert.equal(declined.error?.code, -33211, JSON.stringify(declined));
    assert.equal(declined.error.data.code, 'upstream_auth_declined');
  });

  it('answers the proxy error (never -32042) where no input request fits', async () => {
    const s = await setupOAuth(cleanup);
    // A client without URL elicitation, and a request that cannot be answered with input_required.
    const noUrl = await modern(
      s,
      ALICE,
      1,
      'tools/call',
      { name: 'whoami', arguments: {} },
      { elicitation: {} },
    );
    const list = await modern(s, ALICE, 2, 'tools/list', {});
    for (const answer of [noUrl, list]) {
      assert.equal(answer.error?.code, -33200, JSON.stringify(answer));
      assert.equal(answer.error.data.code, 'upstream_auth_required');
      assert.ok(String(answer.error.data.authorizeUrl).startsWith(`${s.publicUrl}/oauth/start/`));
    }
  });

  it('SDK v2 client: a step-up arrives as a URL elicitation, its handler signs in, the call succeeds', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    const client = new Client(
      { name: 'modern-oauth-test', version: '1.0.0' },
      { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: { pin: MODERN } } },
    );
    const asked: Array<{ mode?: string; url?: string }> = [];
    client.setRequestHandler('elicitation/create', async (request) => {
      const params = request.params as { mode?: string; url?: string };
      asked.push(params);
      const done = await s.world
        .user('alice')
        .authorize(params.url as string, { follow: true, bind: bindAs(ALICE) });
      assert.equal(done.callback?.status, 200, done.callback?.body);
      return { action: 'accept' };
    });
    const transport = new StreamableHTTPClientTransport(new URL(`${s.proxy.url}/mcp`), {
      requestInit: { headers: { 'X-Proxy-Token': ALICE, 'X-MCP-Server-URL': s.world.upstream.url } },
    });
    await client.connect(transport);
    cleanup.push(() => client.close());
    const result = await client.callTool({ name: 'admin', arguments: {} });
    assert.deepEqual(result.content, [{ type: 'text', text: 'admin ok' }]);
    assert.equal(asked.length, 1);
    assert.equal(asked[0]?.mode, 'url');
  });
  it('SDK v2 client: the same when the answer is an event stream (progress asked for)', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    const client = new Client(
      { name: 'modern-oauth-test', version: '1.0.0' },
      { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: { pin: MODERN } } },
    );
    const asked: Array<{ mode?: string; url?: string }> = [];
    client.setRequestHandler('elicitation/create', async (request) => {
      const params = request.params as { mode?: string; url?: string };
      asked.push(params);
      const done = await s.world
        .user('alice')
        .authorize(params.url as string, { follow: true, bind: bindAs(ALICE) });
      assert.equal(done.callback?.status, 200, done.callback?.body);
      return { action: 'accept' };
    });
    const transport = new StreamableHTTPClientTransport(new URL(`${s.proxy.url}/mcp`), {
      requestInit: { headers: { 'X-Proxy-Token': ALICE, 'X-MCP-Server-URL': s.world.upstream.url } },
    });
    await client.connect(transport);
    cleanup.push(() => client.close());
    const result = await client.callTool({ name: 'admin', arguments: {} }, { onprogress: () => {} });
    assert.deepEqual(result.content, [{ type: 'text', text: 'admin ok' }]);
    assert.equal(asked.length, 1);
    assert.equal(asked[0]?.mode, 'url');
  });
});
