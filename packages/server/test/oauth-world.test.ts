/**
 * Smoke test of the OAuth test world (helpers/oauth-world.ts): the SDK v1 client's own OAuth support
 * reaches the protected upstream directly through the world's authorization server and scripted
 * user, so the world is a real OAuth deployment before the proxy's broker is tested against it.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { ManualClock } from './helpers/manual-clock.ts';
import { type OAuthWorld, type ScriptedUser, startOAuthWorld } from './helpers/oauth-world.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';

/** An OAuthClientProvider holding everything in memory; the redirect is driven by a scripted user. */
class MemoryProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  pendingUrl: URL | undefined;

  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'oauth-world smoke test',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.pendingUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/** Connects the SDK client, running the authorization through `user` when the upstream asks. */
async function connect(world: OAuthWorld, provider: MemoryProvider, user: ScriptedUser): Promise<Client> {
  const attempt = async () => {
    const client = new Client({ name: 'smoke', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(world.upstream.url), {
      authProvider: provider,
    });
    await client.connect(transport);
    return { client, transport };
  };
  try {
    return (await attempt()).client;
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || provider.pendingUrl === undefined) throw error;
  }
  const result = await user.authorize(provider.pendingUrl);
  assert.ok(result.code, `no code: ${result.redirect.href}`);
  assert.equal(result.iss, world.issuer, 'RFC 9207 iss');
  const transport = new StreamableHTTPClientTransport(new URL(world.upstream.url), {
    authProvider: provider,
  });
  await transport.finishAuth(result.code);
  const client = new Client({ name: 'smoke', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

function text(result: unknown): string {
  return ((result as { content: { text: string }[] }).content[0] as { text: string }).text;
}

describe('the OAuth test world', () => {
  let world: OAuthWorld | undefined;
  const clients: Client[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await world?.stop();
    world = undefined;
  });

  it('lets the SDK client register, authorize with PKCE and a resource, list and call tools', async () => {
    world = await startOAuthWorld();
    const provider = new MemoryProvider();
    const client = await connect(world, provider, world.user('alice'));
    clients.push(client);

    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), ['admin', 'echo', 'whoami']);
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'hi' } })), 'Echo: hi');
    const me = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} })));
    assert.equal(me.sub, 'alice');
    assert.equal(me.scope, 'mcp:read');

    // The authorize URL carried S256 and the resource; the token is a JWT for that resource.
    const access = provider.saved?.access_token ?? '';
    const claims = JSON.parse(Buffer.from(access.split('.')[1] ?? '', 'base64url').toString());
    assert.equal(claims.aud, world.upstream.resource);
    assert.equal(claims.iss, world.issuer);
    assert.ok(provider.saved?.refresh_token, 'a refresh token was issued');
    assert.deepEqual(
      world.as.events.filter((event) => !event.startsWith('register:')),
      ['login:alice', 'consent:alice', 'token:authorization_code'],
    );
    assert.equal(world.as.clients().length, 1, 'registered dynamically');

    // The upstream saw first no credential, then only this bearer token.
    assert.deepEqual(world.upstream.authorizations(), [`Bearer ${access}`]);
    assert.equal(world.upstream.seen[0]?.authorization, undefined);
    assert.equal(world.upstream.seen[0]?.status, 401);
  });

  it('answers 401 with resource_metadata, serves RFC 9728 and RFC 8414 metadata, and 403 for a missing scope', async () => {
    world = await startOAuthWorld();
    const bare = await fetch(world.upstream.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(bare.status, 401);
    assert.equal(
      bare.headers.get('www-authenticate'),
      `Bearer scope="mcp:read", resource_metadata="${world.upstream.metadataUrl}"`,
    );
    const metadata = (await (await fetch(world.upstream.metadataUrl)).json()) as Record<string, unknown>;
    assert.deepEqual(metadata.authorization_servers, [world.issuer]);
    assert.equal(metadata.resource, world.upstream.resource);
    const root = new URL('/.well-known/oauth-protected-resource', world.upstream.url);
    assert.deepEqual(await (await fetch(root)).json(), metadata);

    const as = (await (
      await fetch(`${world.issuer}/.well-known/oauth-authorization-server`)
    ).json()) as Record<string, unknown>;
    assert.equal(as.issuer, world.issuer);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    assert.equal(as.registration_endpoint, world.as.registrationEndpoint);
    assert.equal(as.revocation_endpoint, world.as.revocationEndpoint);
    assert.equal(as.authorization_response_iss_parameter_supported, true);

    const provider = new MemoryProvider();
    const client = await connect(world, provider, world.user('bob'));
    clients.push(client);
    const denied = await fetch(world.upstream.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${provider.saved?.access_token}`,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'admin', arguments: {} },
      }),
    });
    assert.equal(denied.status, 403);
    assert.match(
      denied.headers.get('www-authenticate') ?? '',
      /error="insufficient_scope", scope="mcp:read mcp:admin"/,
    );
  });

  it('refuses a token past its lifetime, and a refreshed token works again', async () => {
    const clock = new ManualClock();
    world = await startOAuthWorld({ clock, accessTokenTtl: 60 });
    const provider = new MemoryProvider();
    const client = await connect(world, provider, world.user('alice'));
    clients.push(client);
    const first = provider.saved as OAuthTokens;
    assert.equal(first.expires_in, 60);

    clock.advance(61_000);
    const expired = await fetch(world.upstream.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${first.access_token}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get('www-authenticate') ?? '', /error="invalid_token"/);

    // The SDK client meets the 401, refreshes with the refresh token, and retries.
    assert.equal(
      text(await client.callTool({ name: 'echo', arguments: { message: 'again' } })),
      'Echo: again',
    );
    const second = provider.saved as OAuthTokens;
    assert.notEqual(second.access_token, first.access_token);
    assert.notEqual(second.refresh_token, first.refresh_token, 'the refresh token rotated');
    assert.ok(world.as.events.includes('token:refresh_token'));

    // The rotated-away refresh token is dead; forgetting the grants kills the new one too.
    const refresh = (token: string | undefined) =>
      fetch(world?.as.tokenEndpoint ?? '', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: token ?? '',
          client_id: provider.client?.client_id ?? '',
          resource: world?.upstream.resource ?? '',
        }),
      });
    assert.equal(
      ((await (await refresh(first.refresh_token)).json()) as { error?: string }).error,
      'invalid_grant',
    );
    world.as.forgetGrants();
    assert.equal(
      ((await (await refresh(second.refresh_token)).json()) as { error?: string }).error,
      'invalid_grant',
    );

    // Authorizing again: the session is remembered (no login) but consent is asked again.
    const again = await world.user('alice').authorize(provider.pendingUrl as URL);
    assert.equal(again.sawLogin, false);
    assert.equal(again.sawConsent, true);
    assert.ok(again.code);
  });

  it('revokes a refresh token (RFC 7009) and reports a denied consent', async () => {
    world = await startOAuthWorld();
    const provider = new MemoryProvider();
    clients.push(await connect(world, provider, world.user('alice')));
    const revoked = await fetch(world.as.revocationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: provider.saved?.refresh_token ?? '',
        token_type_hint: 'refresh_token',
        client_id: provider.client?.client_id ?? '',
      }),
    });
    assert.equal(revoked.status, 200);
    assert.ok(world.as.events.includes('revoke'));
    const refreshed = await fetch(world.as.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: provider.saved?.refresh_token ?? '',
        client_id: provider.client?.client_id ?? '',
        resource: world.upstream.resource,
      }),
    });
    assert.equal(((await refreshed.json()) as { error?: string }).error, 'invalid_grant');

    const carol = await world.user('carol').authorize(provider.pendingUrl as URL, { consent: 'deny' });
    assert.equal(carol.error, 'access_denied');
    assert.equal(carol.code, undefined);
  });
});
