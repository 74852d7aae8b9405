/**
 * Issue 18: a sign-in link opened without the app that asked for it (an MCP client on /mcp got it
 * through URL elicitation; the user opens it in a browser, no opener). It binds only for the
 * principal that got it: with the one-time code shown beside it (opt-in: OAUTH_USER_CODES=true;
 * few tries, short life), or by
 * the user signing in to the proxy at the principal's OIDC issuer (the proxy as OIDC client).
 * Real parts: oidc-provider as the upstream's authorization server and as the users' identity
 * provider, the SDK v1 client, the SDK upstream.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { issuerKey } from '../src/credentials/registration.ts';
import { freePort } from './helpers/net.ts';
import {
  ALICE,
  authorizeUrlOf,
  callTool,
  connectMcp,
  type OAuthSetup,
  postStart,
  setupOAuth,
  subjectOf,
} from './helpers/oauth-proxy.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

/** A wrong code of the right shape (never the one offered). */
function wrong(code: string): string {
  return code.startsWith('0') ? `1${code.slice(1)}` : `0${code.slice(1)}`;
}

/** Codes are opt-in (review6 links, DESIGN). */
const CODES_ON = { OAUTH_USER_CODES: 'true' };

describe('a sign-in link opened without its app: the one-time code', () => {
  it('reaches an SDK client beside the link (never in it), and binds its own principal once typed', async () => {
    const s = await setupOAuth(cleanup, CODES_ON);
    const connect = () => connectMcp(s, ALICE, cleanup);
    const error = await connect().then(
      () => assert.fail('connected without signing in'),
      (e: { code?: number; data?: { elicitations?: Array<{ url: string; message: string }> } }) => e,
    );
    assert.equal(error.code, -32042);
    const [elicitation] = error.data?.elicitations ?? [];
    assert.ok(elicitation);
    // What the client shows the user beside the link (the SDK keeps only the elicitations).
    const code = /type ([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})\./.exec(
      elicitation.message,
    )?.[1] as string;
    assert.ok(code, elicitation.message);
    assert.ok(!elicitation.url.includes(code.slice(0, 4)) || !elicitation.url.includes(code.slice(5)));
    // The page opened on its own offers the code form, with its warning.
    const page = await (await fetch(elicitation.url)).text();
    assert.match(page, /id="code"/);
    assert.match(page, /If someone sent you this link or a code, stop/);
    // A wrong code binds nothing and says how many tries are left; the link stays.
    const refused = await postStart(elicitation.url, { code: wrong(code) });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, -33213);
    assert.equal(refused.body.error.data.code, 'oauth_code_invalid');
    assert.equal(refused.body.error.data.attemptsLeft, 4);
    // Typed in lower case with a space instead of the dash: the same code.
    const typed = code.toLowerCase().replace('-', ' ');
    const done = await s.world
      .user('alice')
      .authorize(elicitation.url, { follow: true, bind: { code: typed } });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(JSON.parse(done.callback?.body ?? '{}').openerOrigin, undefined, 'no app to tell');
    const client = await connect();
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const [content] = result.content as Array<{ text: string }>;
    assert.equal(JSON.parse(content?.text ?? '{}').sub, 'alice');
    assert.ok(!s.proxy.logs.join('\n').includes(code), 'the code is in no log line');
  });

  it('voids the link at the fifth wrong code', async () => {
    const s = await setupOAuth(cleanup, CODES_ON);
    const reply = await callTool(s, ALICE, 'whoami');
    const url = authorizeUrlOf(s, reply);
    const code: string = reply.body.error.data.userCode;
    for (let left = 4; left >= 0; left--) {
      const refused = await postStart(url, { code: wrong(code) });
      assert.equal(refused.body.error.data.attemptsLeft, left);
    }
    const late = await postStart(url, { code });
    assert.equal(late.status, 400);
    assert.equal(late.body.error.data.code, 'oauth_state_invalid');
  });

  it('expires the code after five minutes, while the link still serves its app', async () => {
    const s = await setupOAuth(cleanup, CODES_ON);
    const reply = await callTool(s, ALICE, 'whoami');
    const url = authorizeUrlOf(s, reply);
    s.clock.advance(5 * 60 * 1000 + 1);
    const late = await postStart(url, { code: reply.body.error.data.userCode });
    assert.equal(late.status, 400);
    assert.equal(late.body.error.data.code, 'oauth_state_invalid');
    assert.match(late.body.error.message, /code has expired/);
    // The link itself still works for its app (the opener's bind).
    assert.match(await (await fetch(url)).text(), /data-mcpp-bind/);
  });

  it('offers no code unless OAUTH_USER_CODES=true: the link then binds only through its app', async () => {
    for (const env of [{}, { OAUTH_USER_CODES: 'false' }]) {
      const s = await setupOAuth(cleanup, env);
      const reply = await callTool(s, ALICE, 'whoami');
      const url = authorizeUrlOf(s, reply);
      assert.equal(reply.body.error.data.userCode, undefined);
      // The page's script offers no confirmation (the code form stays hidden).
      assert.match(await (await fetch(url)).text(), /var c="none"/);
      const refused = await postStart(url, { code: 'ABCD-EFGH' });
      assert.equal(refused.body.error.data.code, 'oauth_state_invalid');
      // Nothing to warn about without codes.
      assert.ok(!s.proxy.logs.some((line) => line.includes('OAUTH_USER_CODES=true')));
    }
  });

  it('warns at start when codes are on and no OIDC login client binds links instead', async () => {
    const s = await setupOAuth(cleanup, CODES_ON);
    const warning = s.proxy.logs.find((line) => line.includes('OAUTH_USER_CODES=true'));
    assert.ok(warning, s.proxy.logs.join('\n'));
    assert.equal(JSON.parse(warning).level, 40);
    assert.match(warning, /OIDC_LOGIN_CLIENT_ID/);
  });
});

describe('a sign-in link opened without its app: signing in to the proxy', () => {
  const AUDIENCE = 'urn:mcp-proxy:users';

  async function setup(): Promise<{ s: OAuthSetup; idp: TestOidcIssuer }> {
    const idp = await startOidcIssuer({ audience: AUDIENCE });
    cleanup.push(() => idp.stop());
    // The proxy's login client at the users' identity provider: a public client (PKCE only).
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
    const s = await setupOAuth(cleanup, {
      PORT: String(port),
      PUBLIC_URL: publicUrl,
      OIDC_ISSUER: idp.issuer,
      OIDC_AUDIENCE: AUDIENCE,
      OIDC_LOGIN_CLIENT_ID: client.client_id as string,
    });
    return { s: { ...s, publicUrl }, idp };
  }

  it('binds when the user who signs in is the principal that got the link, and offers no code', async () => {
    const { s, idp } = await setup();
    const alice = await idp.sign({ sub: 'alice' });
    const reply = await callTool(s, alice, 'whoami');
    const url = authorizeUrlOf(s, reply);
    assert.equal(reply.body.error.data.userCode, undefined, 'no code to phish');
    const page = await (await fetch(url)).text();
    assert.match(page, new RegExp(`Sign in at ${new URL(idp.issuer).host}`));
    assert.equal((await postStart(url, { code: 'ABCD-EFGH' })).body.error.data.code, 'oauth_state_invalid');
    const done = await s.world.user('alice').authorize(url, {
      follow: true,
      bind: { login: (loginUrl) => idp.authorizeRedirect(new URL(loginUrl)) },
    });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(subjectOf(await callTool(s, alice, 'whoami')), 'alice');
  });

  it('refuses when someone else signs in: the link stays for its own user', async () => {
    const { s, idp } = await setup();
    // Bob's link, opened by alice (the identity provider signs everyone in as alice).
    const bob = await idp.sign({ sub: 'bob' });
    const url = authorizeUrlOf(s, await callTool(s, bob, 'whoami'));
    await assert.rejects(
      s.world.user('alice').authorize(url, {
        follow: true,
        bind: { login: (loginUrl) => idp.authorizeRedirect(new URL(loginUrl)) },
      }),
      /HTTP 403: .*oauth_user_mismatch/,
    );
    assert.equal((await fetch(url)).status, 200);
    assert.match(await (await fetch(url)).text(), /data-mcpp-bind/, 'the link was not consumed');
  });
});
