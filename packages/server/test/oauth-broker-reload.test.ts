/**
 * Issue #16 (start-up memory): the upstream OAuth broker is loaded only once a configuration runs
 * it. A proxy started with it off (OAUTH_BROKER=false) gets it from a reload that switches it on
 * (the SIGHUP path: `prepareReload`, then `reload`), and then signs principals in as one started
 * with it on: a call asks for the sign-in, the user signs in, the call gets through with the
 * token. Real authorization server and OAuth-protected upstream (oauth-world).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import {
  ALICE,
  APP,
  authorizeUrlOf,
  BOB,
  callTool,
  connect,
  setupOAuth,
  subjectOf,
} from './helpers/oauth-proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

describe('the OAuth broker switched on by a reload', () => {
  it('is loaded before the reload applies, and signs the principal in', async () => {
    const s = await setupOAuth(cleanup, { OAUTH_BROKER: 'false' });
    // Off: the call goes out without a token and the upstream's refusal comes back as it is.
    const before = await callTool(s, ALICE, 'whoami');
    assert.equal(before.status, 401, JSON.stringify(before.body));
    assert.notEqual(before.body.error?.data?.code, 'upstream_auth_required', JSON.stringify(before.body));

    const next = loadConfig({
      env: {
        PORT: new URL(s.publicUrl).port,
        PUBLIC_URL: s.publicUrl,
        PROXY_TOKENS: `${ALICE},${BOB}`,
        CORS_ORIGINS: APP,
        ALLOW_PRIVATE_NETWORKS: 'true',
        STORE: 'memory',
      },
    });
    await s.proxy.app.prepareReload(next);
    s.proxy.app.reload(next);

    // On at once: the next call asks for the sign-in, and after it the call gets through.
    authorizeUrlOf(s, await callTool(s, ALICE, 'whoami'));
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
  });
});
