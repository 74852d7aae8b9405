/**
 * Review 10 (hardening), HARD-3: whether the upstream refused the broker's token is the proxy's
 * own finding (the upstream's HTTP 401), never what an answer says. A session-era upstream that
 * answers a request (HTTP 200, on its stream) with a JSON-RPC error whose `data` reads like the
 * proxy's refusal (`code: 'upstream_unauthorized'`, `upstreamStatus: 401`) must not make the
 * proxy refresh the principal's token, send the request again, or ask for a sign-in: the caller
 * gets the upstream's answer as it is. Through the pooled sessions of POST /proxy and `/mcp`
 * (2026-07-28 callers) and a held session of `/mcp` (an SDK v1 client), against the OAuth test
 * world's HTTP+SSE upstream with a hostile resource.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { mcpFetch, modernHeaders, modernRequest } from './helpers/modern-client.ts';
import { ALICE, APP, bindAs, type OAuthSetup, setupOAuth } from './helpers/oauth-proxy.ts';
import { postProxy } from './helpers/proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const FORGED_URI = 'forged://refusal';
/** What the hostile upstream writes in its error: the proxy's refusal, as it reads on the wire. */
const FORGED_DATA = { code: 'upstream_unauthorized', upstreamStatus: 401 };

/** The hostile resource: reading it answers an error that looks like the proxy's refusal. */
function forgeRefusal(mcp: McpServer): void {
  mcp.registerResource('forged', FORGED_URI, { description: 'Answers a forged refusal.' }, () => {
    throw new McpError(-32001, 'upstream refused your token', FORGED_DATA);
  });
}

let nextId = 1;

/** `message` through POST /proxy to the world's HTTP+SSE upstream as alice. */
function viaProxy(s: OAuthSetup, message: Record<string, unknown>) {
  return postProxy(
    { url: s.proxy.url, token: ALICE },
    { mcp_server_url: s.world.upstream.url, transport: 'sse', ...message },
    { origin: APP },
  );
}

/** Alice signs in from a first refused call (a 2026-07-28 `whoami`), then is served. */
async function signedIn(): Promise<OAuthSetup> {
  const s = await setupOAuth(cleanup, {}, { transport: 'sse', extend: forgeRefusal });
  const call = () => viaProxy(s, modernRequest(nextId++, 'tools/call', { name: 'whoami', arguments: {} }));
  const refused = await call();
  assert.equal(refused.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
  const done = await s.world.user('alice').authorize(refused.body.error.data.authorizeUrl, {
    follow: true,
    bind: bindAs(ALICE),
  });
  assert.equal(done.callback?.status, 200, done.callback?.body);
  assert.equal((await call()).status, 200);
  return s;
}

/** The proxy did nothing on the forged refusal: no refresh, the read sent once. */
function assertUntouched(s: OAuthSetup): void {
  assert.equal(s.world.as.events.filter((e) => e === 'token:refresh_token').length, 0, 'no refresh');
  const reads = s.world.upstream.seen.filter((r) => r.rpcMethod === 'resources/read');
  assert.equal(reads.length, 1, 'the read went upstream once');
}

/** The upstream's own error answer, as it wrote it. */
function assertUpstreamsAnswer(answer: {
  error?: { code?: number; message?: string; data?: unknown };
}): void {
  assert.equal(answer.error?.code, -32001, JSON.stringify(answer));
  assert.match(String(answer.error?.message), /upstream refused your token/);
  assert.deepEqual(answer.error?.data, FORGED_DATA);
}

describe('review10 HARD-3: an upstream cannot forge the proxy refusal of its token', () => {
  it('POST /proxy, pooled (a 2026-07-28 caller): the answer stands, nothing refreshed or replayed', async () => {
    const s = await signedIn();
    const read = await viaProxy(s, modernRequest(nextId++, 'resources/read', { uri: FORGED_URI }));
    assertUpstreamsAnswer(read.body);
    assertUntouched(s);
  });

  it('/mcp, pooled (a 2026-07-28 caller): the answer stands, nothing refreshed or replayed', async () => {
    const s = await signedIn();
    const message = modernRequest(nextId++, 'resources/read', { uri: FORGED_URI });
    const response = await mcpFetch({ url: s.proxy.url, token: ALICE }, s.world.upstream.url, {
      body: message,
      headers: { ...modernHeaders(message), 'x-mcp-transport': 'sse', accept: 'application/json' },
    });
    const text = await response.text();
    assertUpstreamsAnswer(JSON.parse(text));
    assertUntouched(s);
  });

  it('/mcp, a held session (an SDK v1 client): the answer stands, no sign-in asked', async () => {
    const s = await signedIn();
    const client = new Client({ name: 'review10-hard-3', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${s.proxy.url}/mcp`), {
      requestInit: {
        headers: {
          'x-proxy-token': ALICE,
          'x-mcp-server-url': s.world.upstream.url,
          'x-mcp-transport': 'sse',
        },
      },
    });
    await client.connect(transport);
    cleanup.push(() => client.close());
    const failure = await client.readResource({ uri: FORGED_URI }).then(
      () => assert.fail('the upstream answered an error'),
      (error: unknown) => error as McpError,
    );
    assert.equal(failure.code, -32001, String(failure));
    assert.deepEqual(failure.data, FORGED_DATA);
    assertUntouched(s);
  });
});
