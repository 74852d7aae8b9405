/**
 * Discovery for MCP clients (issue 17 #5): with an OIDC issuer configured the proxy serves RFC 9728
 * protected resource metadata and answers 401s on /mcp and /servers/{name}/mcp with
 * `WWW-Authenticate: Bearer resource_metadata="…"`, and the official SDK v1 client's own OAuth
 * support signs in to the proxy by itself: metadata, the provider's discovery, dynamic client
 * registration, authorization code + PKCE at a real `oidc-provider` on loopback, then MCP calls.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type OAuthClientProvider, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { loadConfig } from '../src/config/config.ts';
import { type ConformanceServer, startConformanceServer } from './fixtures/conformance-server.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';

/** An SDK OAuth client provider kept in memory; the "redirect" is recorded for the test to follow. */
class MemoryOAuthProvider implements OAuthClientProvider {
  #client: OAuthClientInformationMixed | undefined;
  #tokens: OAuthTokens | undefined;
  #verifier = '';
  authorizationUrl: URL | undefined;
  registrations = 0;
  get redirectUrl(): string {
    return 'http://127.0.0.1:9/callback';
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'oidc-discovery test',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.#client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.registrations++;
    this.#client = info;
  }
  tokens() {
    return this.#tokens;
  }
  saveTokens(tokens: OAuthTokens) {
    this.#tokens = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.#verifier = verifier;
  }
  codeVerifier() {
    return this.#verifier;
  }
}

describe('protected resource metadata and the SDK OAuth client', () => {
  let idp: TestOidcIssuer;
  let upstream: ConformanceServer;
  let proxy: RunningProxy | undefined;

  beforeEach(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    upstream = await startConformanceServer();
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await upstream.stop();
    await idp.stop();
  });

  async function start(env: Record<string, string> = {}, oidc: unknown = undefined) {
    const path = join(mkdtempSync(join(tmpdir(), 'oidc-discovery-')), 'config.json');
    const issuers = [{ issuer: idp.issuer, audience: AUDIENCE, scopes: ['mcp'] }];
    writeFileSync(
      path,
      JSON.stringify({
        servers: { upstream: { url: upstream.url } },
        ...(oidc === null ? {} : { oidc: { issuers } }),
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: path, ...env });
    return proxy;
  }

  it('serves RFC 9728 metadata for the proxy, /mcp and /servers/{name}/mcp', async () => {
    const proxy = await start();
    for (const path of ['', '/mcp', '/servers/upstream/mcp']) {
      const response = await fetch(`${proxy.url}/.well-known/oauth-protected-resource${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('access-control-allow-origin'), '*');
      assert.deepEqual(await response.json(), {
        resource: `${proxy.url}${path}`,
        authorization_servers: [idp.issuer],
        bearer_methods_supported: ['header'],
        scopes_supported: ['mcp'],
        resource_name: 'mcp-proxy',
      });
    }
  });

  it('names PUBLIC_URL as the resource when it is set', async () => {
    const proxy = await start({ PUBLIC_URL: 'https://proxy.example.com/' });
    const body = (await (await fetch(`${proxy.url}/.well-known/oauth-protected-resource/mcp`)).json()) as {
      resource: string;
    };
    assert.equal(body.resource, 'https://proxy.example.com/mcp');
    const refused = await fetch(`${proxy.url}/mcp`, { method: 'POST' });
    assert.equal(
      refused.headers.get('www-authenticate'),
      'Bearer resource_metadata="https://proxy.example.com/.well-known/oauth-protected-resource/mcp"',
    );
  });

  it('answers a 401 on /mcp and /servers/{name}/mcp with a resource_metadata challenge', async () => {
    const proxy = await start();
    const cases = [
      ['/mcp', undefined, `Bearer resource_metadata="${proxy.url}/.well-known/oauth-protected-resource/mcp"`],
      [
        '/servers/upstream/mcp?x=1',
        'Bearer not-a-token',
        `Bearer error="invalid_token", resource_metadata="${proxy.url}/.well-known/oauth-protected-resource/servers/upstream/mcp"`,
      ],
    ] as const;
    for (const [path, authorization, challenge] of cases) {
      const response = await fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(authorization === undefined ? {} : { authorization }),
        },
        body: '{}',
      });
      assert.equal(response.status, 401, path);
      assert.equal(response.headers.get('www-authenticate'), challenge, path);
    }
  });

  it('echoes no odd Host in the challenge or the metadata', async () => {
    const proxy = await start();
    const { port } = new URL(proxy.url);
    const ask = (method: string, path: string) =>
      new Promise<{ status: number; challenge: string | undefined }>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, method, path, headers: { host: 'evil.test", x="y' } },
          (res) => {
            res.resume();
            const challenge = res.headers['www-authenticate'];
            resolve({ status: res.statusCode ?? 0, challenge });
          },
        );
        req.once('error', reject);
        req.end();
      });
    const refused = await ask('POST', '/mcp');
    assert.equal(refused.status, 401);
    assert.equal(refused.challenge, undefined);
    assert.equal((await ask('GET', '/.well-known/oauth-protected-resource/mcp')).status, 404);
  });

  it('serves no metadata and no challenge without an issuer', async () => {
    const proxy = await start({}, null);
    assert.equal((await fetch(`${proxy.url}/.well-known/oauth-protected-resource/mcp`)).status, 404);
    const refused = await fetch(`${proxy.url}/mcp`, { method: 'POST' });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), null);
  });

  it('lets the SDK v1 client sign in by itself and call tools as the signed-in user', async () => {
    const proxy = await start();
    const endpoint = new URL(`${proxy.url}/servers/upstream/mcp`);
    const provider = new MemoryOAuthProvider();

    // First attempt: 401 → metadata → provider discovery → registration → "redirect".
    const first = new Client({ name: 'oidc-discovery', version: '1.0.0' });
    await assert.rejects(
      first.connect(new StreamableHTTPClientTransport(endpoint, { authProvider: provider })),
      UnauthorizedError,
    );
    assert.equal(provider.registrations, 1, 'the client registered itself at the provider');
    const authorizationUrl = provider.authorizationUrl;
    if (authorizationUrl === undefined) throw new Error('the client was not sent to authorize');
    assert.ok(authorizationUrl?.href.startsWith(`${idp.issuer}/`), 'sent to the configured issuer');
    assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');

    // The user logs in; the client exchanges the code for a token.
    const code = await idp.authorize(authorizationUrl);
    const transport = new StreamableHTTPClientTransport(endpoint, { authProvider: provider });
    await transport.finishAuth(code);
    const accessToken = provider.tokens()?.access_token;
    assert.ok(accessToken);

    const client = new Client({ name: 'oidc-discovery', version: '1.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.length > 0);
      const result = await client.callTool({ name: 'test_simple_text', arguments: {} });
      assert.ok(Array.isArray(result.content));
    } finally {
      await client.close();
    }
    // The token never appears in the proxy's log.
    assert.ok(!proxy.logs.some((line) => line.includes(accessToken)));
  });

  it("accepts the proxy's own resource URLs under PUBLIC_URL as audiences (RFC 8707 providers)", async () => {
    await idp.stop();
    idp = await startOidcIssuer({ audience: AUDIENCE, audienceFromResource: true });
    const path = join(mkdtempSync(join(tmpdir(), 'oidc-discovery-')), 'config.json');
    const write = (publicUrl: string | undefined) =>
      writeFileSync(
        path,
        JSON.stringify({
          servers: { upstream: { url: upstream.url } },
          oidc: { issuers: [{ issuer: idp.issuer, audience: 'https://unrelated.test', scopes: ['mcp'] }] },
          ...(publicUrl === undefined ? {} : { publicUrl }),
        }),
      );
    write(undefined);
    proxy = await startProxy({ MCP_PROXY_CONFIG: path });
    const running = proxy;
    const reload = () =>
      running.app.reload(
        loadConfig({ env: { PROXY_TOKEN: running.token, ALLOW_PRIVATE_NETWORKS: 'true' }, configPath: path }),
      );
    // PUBLIC_URL is the address the proxy is reached at (known once it listens).
    write(running.url);
    reload();
    const endpoint = new URL(`${running.url}/servers/upstream/mcp`);
    const provider = new MemoryOAuthProvider();
    await assert.rejects(
      new Client({ name: 'rfc8707', version: '1' }).connect(
        new StreamableHTTPClientTransport(endpoint, { authProvider: provider }),
      ),
      UnauthorizedError,
    );
    if (provider.authorizationUrl === undefined) throw new Error('the client was not sent to authorize');
    const transport = new StreamableHTTPClientTransport(endpoint, { authProvider: provider });
    await transport.finishAuth(await idp.authorize(provider.authorizationUrl));
    const token = provider.tokens()?.access_token as string;
    const audience = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).aud;
    assert.equal(audience, endpoint.href, 'the provider issued the token for the endpoint itself');
    const client = new Client({ name: 'rfc8707', version: '1' });
    await client.connect(transport);
    assert.ok((await client.listTools()).tools.length > 0);
    await client.close();

    // Without PUBLIC_URL the proxy does not know its own URL: the Host cannot vouch for it.
    write(undefined);
    reload();
    const refused = await fetch(endpoint, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    assert.equal(refused.status, 401);
    assert.equal(
      ((await refused.json()) as { error: { data: { reason: string } } }).error.data.reason,
      'audience',
    );
  });
});
