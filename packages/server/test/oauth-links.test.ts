/**
 * Sign-in links and the settings they depend on: the proxy's own login at the operator's OIDC
 * issuer, OAUTH_USER_CODES switched off by reload, and VAULT_KEY given by reload to instances
 * sharing Redis.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { issuerKey } from '../src/credentials/registration.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import {
  ALICE,
  APP,
  authorizeUrlOf,
  BOB,
  bindAs,
  callTool,
  postStart,
  setupOAuth,
  subjectOf,
} from './helpers/oauth-proxy.ts';
import { startOAuthWorld } from './helpers/oauth-world.ts';
import { startOidcIssuer } from './helpers/oidc-issuer.ts';
import { startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

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

/**
 * Review 6 (links) finding 2: OAUTH_USER_CODES is documented as reloadable (configuration.md)
 * and is the operator's switch against consent phishing with codes (security.md, oauth.md "The
 * trade-off of codes"). The broker reads it only when a link is offered (sign-in-links.ts
 * `offer`): the start page (`startInfo`) and the code's bind (`bindByCode`) never look at it
 * again, so a code offered before the operator switched codes off still binds for its 5 minutes
 * after the reload: exactly the codes a phishing campaign already handed out.
 */
describe('review6 links 2: OAUTH_USER_CODES=false by reload', () => {
  it('stops codes already offered: the page offers no code and a typed code binds nothing', async () => {
    // Codes on (opt-in since the same review's DESIGN item), then off by reload.
    const s = await setupOAuth(cleanup, { OAUTH_USER_CODES: 'true' });
    const reply = await callTool(s, ALICE, 'whoami');
    const url = authorizeUrlOf(s, reply);
    const code: string = reply.body.error.data.userCode;
    assert.ok(code, 'a code was offered before the reload');
    // The operator switches codes off (same settings otherwise).
    s.proxy.app.reload(
      loadConfig({
        env: {
          PORT: new URL(s.publicUrl).port,
          PUBLIC_URL: s.publicUrl,
          OAUTH_BROKER: 'true',
          PROXY_TOKENS: `${ALICE},${BOB}`,
          CORS_ORIGINS: APP,
          ALLOW_PRIVATE_NETWORKS: 'true',
          STORE: 'memory',
          OAUTH_USER_CODES: 'false',
        },
      }),
    );
    // A new link gets no code: the reload took.
    assert.equal((await callTool(s, ALICE, 'whoami')).body.error.data.userCode, undefined);
    // The link made before it no longer offers the code form...
    const page = await (await fetch(url)).text();
    assert.doesNotMatch(page, /var c="code"/, 'the start page still asks for the code');
    // ...and its code binds nothing.
    const typed = await postStart(url, { code });
    assert.equal(typed.status, 400, JSON.stringify(typed.body));
    assert.equal(typed.body.error.data.code, 'oauth_state_invalid');
  });
});

/**
 * Review 8 (creds) finding 2: config/broker-switch.ts `sharedVaultKeyProblem` refuses a start
 * (and a reload) with REDIS_URL and the broker on but no VAULT_KEY, since each instance would
 * seal the shared vault with a key of its own. The check reads the NEXT configuration's
 * `vaultKeys`, but the running app never takes them: app.ts builds `vaultKeysFor(config)` once
 * at start, and `vaultKeys` is not in config/restart-settings.ts (so no "restart needed" either).
 * Instances started with the broker off and no VAULT_KEY, reloaded with OAUTH_BROKER=true and a
 * VAULT_KEY (the check passes), run the broker on keys each generated under its own DATA_DIR:
 * exactly the split the check exists to prevent. A user signed in through one instance is asked
 * to sign in again by the other, again and again. (The same reload gap makes a VAULT_KEY
 * rotation or the removal of a leaked key by SIGHUP silently do nothing.)
 * Real parts: redis-server, the OAuth test world (oidc-provider, SDK upstream), two proxies.
 */
describe('review8 creds 2: VAULT_KEY with the broker switched on by reload', () => {
  it('two instances sharing Redis then seal with the same key: one serves what the other signed in', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const clock = new ManualClock();
    const world = await startOAuthWorld({ clock, accessTokenTtl: 60 });
    cleanup.push(() => world.stop());
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'review8-creds-2-')));
    cleanup.push(() => {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });
    const base = {
      PUBLIC_URL: publicUrl,
      PROXY_TOKENS: ALICE,
      CORS_ORIGINS: APP,
      ALLOW_PRIVATE_NETWORKS: 'true',
      REDIS_URL: redis.url,
    };
    // Started with the broker off and no VAULT_KEY: the start-up check has nothing to refuse.
    const a = await startProxy(
      { ...base, OAUTH_BROKER: 'false', PORT: String(port), DATA_DIR: dirs[0] as string },
      { clock },
    );
    cleanup.push(() => a.close());
    const b = await startProxy({ ...base, OAUTH_BROKER: 'false', DATA_DIR: dirs[1] as string }, { clock });
    cleanup.push(() => b.close());
    // The operator switches the broker on and gives both the same VAULT_KEY, by reload: the
    // check (the next configuration has a VAULT_KEY) passes.
    const vaultKey = Buffer.alloc(32, 7).toString('base64');
    const restartNeeded = [a, b].map((proxy, index) =>
      proxy.app.reload(
        loadConfig({
          env: {
            ...base,
            OAUTH_BROKER: 'true',
            VAULT_KEY: vaultKey,
            DATA_DIR: dirs[index] as string,
            ...(index === 0 ? { PORT: String(port) } : {}),
          },
        }),
      ),
    );
    const viaA = { world, proxy: a, clock, publicUrl };
    const viaB = { world, proxy: b, clock, publicUrl };
    const url = authorizeUrlOf(viaA, await callTool(viaA, ALICE, 'whoami'));
    const done = await world.user('alice').authorize(url, { follow: true, bind: bindAs(ALICE) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(subjectOf(await callTool(viaA, ALICE, 'whoami')), 'alice');
    // Signed in through A, served by B: both should seal and open with VAULT_KEY now.
    const reply = await callTool(viaB, ALICE, 'whoami');
    assert.equal(
      reply.status,
      200,
      `B cannot open what A sealed after the reload (restart needed said: ${JSON.stringify(restartNeeded)}): ${JSON.stringify(reply.body)}`,
    );
    assert.equal(subjectOf(reply), 'alice');
  });
});
