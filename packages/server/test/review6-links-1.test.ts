/**
 * Review 6 (links) finding 1: the proxy's own login at the operator's OIDC issuer
 * (credentials/proxy-login.ts) goes through the egress guard meant for caller-chosen upstreams
 * (credentials/wiring.ts hands ProxyLogin the broker's guardedFetch). The same issuer's tokens
 * are verified with the operator-trusted fetch (identity/oidc), so the principal authenticates,
 * its link is offered with the `login` confirmation, and then the login fails with
 * `oauth_login_failed` whenever the upstream egress policy does not also admit the issuer: an
 * issuer on a port outside EGRESS_ALLOWED_PORTS (here), or (the default,
 * ALLOW_PRIVATE_NETWORKS=false) on a private network. The operator's only ways out widen what
 * every caller may reach (ALLOW_PRIVATE_NETWORKS=true, or an allowlist that then has to name
 * every upstream), so the guard's policy and the feature fight each other.
 * Real parts: oidc-provider as the users' identity provider, the OAuth test world upstream.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { issuerKey } from '../src/credentials/registration.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { authorizeUrlOf, callTool, subjectOf } from './helpers/oauth-proxy.ts';
import { startOAuthWorld } from './helpers/oauth-world.ts';
import { startOidcIssuer } from './helpers/oidc-issuer.ts';
import { startProxy } from './helpers/proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

describe('review6 links 1: the proxy login reaches the operator-configured OIDC issuer', () => {
  it('binds through the login even when upstream egress is restricted to the MCP servers ports', async () => {
    const AUDIENCE = 'urn:mcp-proxy:users';
    const idp = await startOidcIssuer({ audience: AUDIENCE });
    cleanup.push(() => idp.stop());
    const clock = new ManualClock();
    const world = await startOAuthWorld({ clock, accessTokenTtl: 60 });
    cleanup.push(() => world.stop());
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const registered = await fetch(`${idp.issuer}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: [`${publicUrl}/oauth/login/${issuerKey(idp.issuer)}`],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      }),
    });
    const client = (await registered.json()) as { client_id?: string };
    assert.equal(registered.status, 201, JSON.stringify(client));
    // The operator lets callers reach the MCP servers (and their authorization server) only on
    // their own ports; the users' identity provider is the operator's, configured by it.
    const upstreamPorts = [new URL(world.issuer).port, new URL(world.upstream.url).port];
    const proxy = await startProxy(
      {
        PORT: String(port),
        PUBLIC_URL: publicUrl,
        OAUTH_BROKER: 'true',
        CORS_ORIGINS: 'http://app.example',
        OIDC_ISSUER: idp.issuer,
        OIDC_AUDIENCE: AUDIENCE,
        OIDC_LOGIN_CLIENT_ID: client.client_id as string,
        EGRESS_ALLOWED_PORTS: [...new Set(upstreamPorts)].join(','),
      },
      { clock },
    );
    cleanup.push(() => proxy.close());
    const s = { world, proxy, clock, publicUrl };

    const alice = await idp.sign({ sub: 'alice' });
    // The issuer's token is accepted (identity's own fetch reached the issuer's JWKS)...
    const url = authorizeUrlOf(s, await callTool(s, alice, 'whoami'));
    // ...and the link offers the login at that issuer, the one way it binds without its app.
    assert.match(await (await fetch(url)).text(), new RegExp(`Sign in at ${new URL(idp.issuer).host}`));
    const done = await world.user('alice').authorize(url, {
      follow: true,
      bind: { login: (loginUrl) => idp.authorizeRedirect(new URL(loginUrl)) },
    });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(subjectOf(await callTool(s, alice, 'whoami')), 'alice');
  });
});
