/**
 * Review 6 (links) finding 2: OAUTH_USER_CODES is documented as reloadable (configuration.md)
 * and is the operator's switch against consent phishing with codes (security.md, oauth.md "The
 * trade-off of codes"). The broker reads it only when a link is offered (sign-in-links.ts
 * `offer`): the start page (`startInfo`) and the code's bind (`bindByCode`) never look at it
 * again, so a code offered before the operator switched codes off still binds for its 5 minutes
 * after the reload: exactly the codes a phishing campaign already handed out.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { ALICE, APP, authorizeUrlOf, BOB, callTool, postStart, setupOAuth } from './helpers/oauth-proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

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
