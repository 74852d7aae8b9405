/**
 * Review 8 (creds) finding 1: credentials/remembered-discovery.ts remembers "this server has no
 * OAuth metadata" for 2 minutes, for every principal of the instance, whenever discovery ends in
 * discovery.ts `noOAuthMetadata()`. But discovery.ts `getMetadata` treats ANY answer other than
 * 200 (a 503, a 429 of a rate limit, a 500) and any failed fetch (a reset, its own 10 s
 * deadline) as "no document here": one transient failure of an OAuth server's protected resource
 * metadata ends in the same `noOAuthMetadata()` and is remembered. For the next 2 minutes every
 * principal calling that server gets the upstream's plain 401 (`upstream_unauthorized`) and no
 * sign-in link, although the server is healthy again (and nothing is even asked of it).
 * A principal can cause the blip for everyone: its own calls through the proxy (the one egress
 * address) can run the server's per-address rate limit out, then a 429 on the metadata is
 * remembered for all.
 * Real parts: two node:http servers on loopback (an authorization server with RFC 8414 metadata
 * and registration, an MCP server answering 401 with its RFC 9728 metadata URL) and the proxy.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

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

/** An OAuth MCP server whose resource metadata answers 503 while `metadataDown` is true. */
async function oauthServer(issuer: string) {
  const state = { metadataDown: false, metadataGets: 0 };
  let origin = '';
  origin = await listen((request, response) => {
    request.resume();
    if (request.method === 'GET' && request.url?.startsWith('/.well-known/oauth-protected-resource')) {
      state.metadataGets++;
      if (state.metadataDown) return json(response, 503, { error: 'temporarily_unavailable' });
      return json(response, 200, { resource: `${origin}/mcp`, authorization_servers: [issuer] });
    }
    if (request.url === '/mcp') {
      response.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
      });
      return response.end('{"error":"unauthorized"}');
    }
    json(response, 404, { error: 'not_found' });
  });
  return { url: `${origin}/mcp`, state };
}

describe('review8 creds 1: a transient failure of the resource metadata', () => {
  it('is not remembered as "no OAuth": the next call, the server healthy again, offers the sign-in', async () => {
    const server = await oauthServer(await authorizationServer());
    const port = await freePort();
    const proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
    });
    cleanup.push(() => proxy.close());
    const call = (id: number) =>
      postProxy(proxy, { mcp_server_url: server.url, jsonrpc: '2.0', id, method: 'tools/list' });

    // One blip: the resource metadata answers 503 to the first discovery.
    server.state.metadataDown = true;
    const during = await call(1);
    // The server's 401 names its metadata, a plain sign of OAuth: the blip is the sign-in
    // failing, to retry (not the upstream's own refusal, which would say "check mcp_token").
    assert.equal(during.status, 502, JSON.stringify(during.body));
    assert.equal(during.body?.error?.data?.code, 'upstream_auth_failed', JSON.stringify(during.body));
    assert.equal(during.body?.error?.data?.reason, 'metadata_unavailable', JSON.stringify(during.body));
    server.state.metadataDown = false;
    const gets = server.state.metadataGets;

    // The server is healthy again: a principal (here the same one; any other alike) calls.
    const after = await call(2);
    assert.equal(
      after.body?.error?.data?.code,
      'upstream_auth_required',
      `one 503 of the metadata made the proxy forget the server uses OAuth: ${JSON.stringify(after.body)}` +
        ` (metadata GETs after the blip: ${server.state.metadataGets - gets})`,
    );
  });

  it("a bare 401 whose metadata URLs answer 503 stays the upstream's own refusal, not remembered", async () => {
    // An API-key server (no OAuth named in its 401) behind a gateway answering 503 elsewhere.
    const state = { wellKnownGets: 0 };
    const origin = await listen((request, response) => {
      request.resume();
      if (request.url?.startsWith('/.well-known/')) {
        state.wellKnownGets++;
        return json(response, 503, { error: 'unavailable' });
      }
      response.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      response.end('{"error":"missing api key"}');
    });
    const port = await freePort();
    const proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
    });
    cleanup.push(() => proxy.close());
    const call = (id: number) =>
      postProxy(proxy, { mcp_server_url: `${origin}/mcp`, jsonrpc: '2.0', id, method: 'tools/list' });
    const first = await call(1);
    assert.equal(first.status, 401, JSON.stringify(first.body));
    assert.equal(first.body?.error?.data?.code, 'upstream_unauthorized', JSON.stringify(first.body));
    const gets = state.wellKnownGets;
    assert.ok(gets > 0, 'the first call ran discovery');
    const second = await call(2);
    assert.equal(second.body?.error?.data?.code, 'upstream_unauthorized', JSON.stringify(second.body));
    // Nothing was concluded from the 503s: the next call asks again (once they answer 404 it stops).
    assert.equal(state.wellKnownGets - gets, gets, 'the 503s were remembered as "no OAuth"');
  });
});
