/**
 * Review 8 (creds) finding 4: one principal makes the proxy remember "no OAuth" for a server
 * another principal needs. credentials/remembered-discovery.ts keys its memory by the server
 * URL's origin and path only, and broker.ts `#begin` consults it before it looks at the 401's
 * challenge. The MCP authorization spec lets a server publish its protected resource metadata
 * only where its 401 challenge says (`resource_metadata`, RFC 9728 §5.1), not at a well-known
 * URL. A caller that reaches the same origin and path in a way the server answers with a bare
 * 401 (here another transport, `transport: 'sse'`, whose GET the server's challenge middleware
 * does not cover) runs discovery without that URL: nothing found, "no OAuth" remembered for 2
 * minutes for the whole instance. Every other principal's call, whose 401 names
 * `resource_metadata` plainly, then gets the upstream's own 401 and no sign-in. One request
 * every 2 minutes keeps the server "without OAuth" for everybody.
 * Real parts: a node:http authorization server and MCP server on loopback, the proxy.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-review8-creds-4-0123456789ab';
const BOB = 'bob-review8-creds-4-0123456789abcd';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

async function listen(handler: (request: IncomingMessage, response: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** An authorization server: RFC 8414 metadata and an open registration endpoint. */
async function authorizationServer(): Promise<string> {
  let origin = '';
  origin = await listen((request, response) => {
    request.resume();
    if (request.method === 'GET' && request.url === '/.well-known/oauth-authorization-server') {
      return json(response, 200, {
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        registration_endpoint: `${origin}/reg`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
      });
    }
    if (request.method === 'POST' && request.url === '/reg') {
      return json(response, 201, { client_id: 'proxy-client', token_endpoint_auth_method: 'none' });
    }
    json(response, 404, { error: 'not_found' });
  });
  return origin;
}

/**
 * An OAuth MCP server whose resource metadata lives only where its POST 401 says (no well-known
 * URL); a GET of its endpoint gets a bare 401.
 */
async function oauthServer(issuer: string): Promise<string> {
  let origin = '';
  origin = await listen((request, response) => {
    request.resume();
    if (request.method === 'GET' && request.url === '/oauth/resource-metadata') {
      return json(response, 200, { resource: `${origin}/mcp`, authorization_servers: [issuer] });
    }
    if (request.url === '/mcp' && request.method === 'POST') {
      response.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer resource_metadata="${origin}/oauth/resource-metadata"`,
      });
      return response.end('{"error":"unauthorized"}');
    }
    if (request.url === '/mcp') {
      response.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      return response.end('{"error":"unauthorized"}');
    }
    json(response, 404, { error: 'not_found' });
  });
  return `${origin}/mcp`;
}

async function setup() {
  const serverUrl = await oauthServer(await authorizationServer());
  const port = await freePort();
  const proxy = await startProxy({
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    OAUTH_BROKER: 'true',
    PROXY_TOKENS: `${ALICE},${BOB}`,
  });
  cleanup.push(() => proxy.close());
  let id = 1;
  const call = (token: string, extra: Record<string, string> = {}) =>
    postProxy(
      { url: proxy.url, token },
      { mcp_server_url: serverUrl, ...extra, jsonrpc: '2.0', id: id++, method: 'tools/list' },
    );
  return { call };
}

describe("review8 creds 4: one principal's discovery decides 'no OAuth' for all", () => {
  it("(control) alice's call to the server is offered a sign-in", async () => {
    const { call } = await setup();
    const reply = await call(ALICE);
    assert.equal(reply.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(reply.body));
  });

  it("bob's bare 401 (another transport to the same URL) does not take alice's sign-in away", async () => {
    const { call } = await setup();
    const bobs = await call(BOB, { transport: 'sse' });
    assert.equal(bobs.status, 401, JSON.stringify(bobs.body));
    // Alice's call gets the server's 401 with its resource_metadata, a plain sign of OAuth.
    const reply = await call(ALICE);
    assert.equal(
      reply.body?.error?.data?.code,
      'upstream_auth_required',
      `alice is refused the sign-in because of bob's call: ${JSON.stringify(reply.body)}`,
    );
  });
});
