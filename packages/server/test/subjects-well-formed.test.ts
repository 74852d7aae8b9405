/**
 * Review 10 (h/dup-b, credentials/hashed-secrets.ts) DUPB-1: `digest()` and `sameText()` turn
 * their text into UTF-8 first, which maps every lone surrogate (and U+FFFD itself) to the same
 * three bytes. Two OIDC principals whose `sub` differ only there (`carol\uFFFD` and
 * `carol\uD800`) then share the vault slot `digest(principalKey + "\n" + resource)`, so one is
 * served the other's upstream tokens (and `sameText` takes one's sign-in link as the other's).
 * The principal keys themselves differ (`===` tells them apart everywhere else).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { freePort } from './helpers/net.ts';
import { authorizeUrlOf, bindAs, callTool, setupOAuth, subjectOf } from './helpers/oauth-proxy.ts';
import { startOidcIssuer } from './helpers/oidc-issuer.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

describe('review10 dupb 1: principals whose keys differ only in ill-formed UTF-16', () => {
  it('do not share the upstream tokens the broker keeps', async () => {
    const AUDIENCE = 'urn:mcp-proxy:users';
    const idp = await startOidcIssuer({ audience: AUDIENCE });
    cleanup.push(() => idp.stop());
    const port = await freePort();
    const s = await setupOAuth(cleanup, {
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OIDC_ISSUER: idp.issuer,
      OIDC_AUDIENCE: AUDIENCE,
    });
    const setup = { ...s, publicUrl: `http://127.0.0.1:${port}` };
    // The victim's subject carries U+FFFD (a valid character); the other's a lone surrogate.
    const victim = await idp.sign({ sub: 'carol\ufffd' });
    const other = await idp.sign({ sub: 'carol\ud800' });

    const url = authorizeUrlOf(setup, await callTool(s, victim, 'whoami'));
    const done = await s.world.user('carol').authorize(url, { follow: true, bind: bindAs(victim) });
    assert.equal(done.callback?.status, 200, done.callback?.body);
    assert.equal(subjectOf(await callTool(s, victim, 'whoami')), 'carol');

    // Another principal, never signed in upstream, whose `sub` is ill-formed: it must not be
    // served with carol's upstream account. The proxy refuses such a subject at the door.
    const reply = await callTool(s, other, 'whoami');
    assert.equal(reply.status, 401, `served as ${JSON.stringify(reply.body?.result ?? reply.body)}`);
    assert.equal(reply.body.error.data.code, 'token_invalid');
    assert.match(reply.body.error.message, /well-formed/);
  });
});
