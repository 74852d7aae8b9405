/**
 * Review 10 (minting, issues 17 and 18) MINT-5: a minted principal is `minted:<subject>` whoever
 * minted it (identity/minted-tokens.ts `mintedPrincipal`), and the upstream OAuth broker keeps a
 * user's upstream sign-in per principal (credentials/broker.ts, keyed by `principalKey`). So a
 * second admin token — another app's backend, limited to the same upstream URLs — mints a token
 * for the subject `alice` and acts upstream with the sign-in Alice gave the FIRST app, without
 * Alice ever signing in through it. The admin's grants are not exceeded in any listed dimension,
 * yet its token reaches an upstream account its admin was never given.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { callTool, connect, type OAuthSetup, setupOAuth, subjectOf } from './helpers/oauth-proxy.ts';

/** App A's backend: the unrestricted admin token. */
const APP_A_ADMIN = 'review10-mint-5-app-a-admin-0123456789';
/** App B's backend: an admin token limited to loopback `/mcp` URLs (the world's upstream). */
const APP_B_ADMIN = 'review10-mint-5-app-b-admin-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('review10 MINT-5: one admin’s minted subject is not another admin’s', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('app B’s token for "alice" does not act with the upstream sign-in alice gave app A', async () => {
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review10-mint-5-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        tokens: [{ sha256: sha256(APP_B_ADMIN), admin: true, urls: ['http://127.0.0.1:*/mcp'] }],
      }),
    );
    const s: OAuthSetup = await setupOAuth(cleanup, {
      ADMIN_TOKEN: APP_A_ADMIN,
      SIGNING_KEYS: keyFile(),
      MCP_PROXY_CONFIG: configPath,
      ALLOW_PRIVATE_NETWORKS: 'true',
    });
    const mintFor = async (admin: string) => {
      const reply = await mintRaw(s.proxy.url, { subject: 'alice', ttlSeconds: 600 }, admin);
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      return reply.body.token as string;
    };

    // Alice signs in upstream through app A.
    const fromA = await mintFor(APP_A_ADMIN);
    await connect(s, fromA, 'alice');
    assert.equal(subjectOf(await callTool(s, fromA, 'whoami')), 'alice');

    // App B mints a token for the same subject: Alice never signed in through app B.
    const fromB = await mintFor(APP_B_ADMIN);
    const reply = await callTool(s, fromB, 'whoami');
    assert.equal(
      reply.status,
      401,
      `app B's token acted upstream as ${reply.status === 200 ? subjectOf(reply) : JSON.stringify(reply.body)}`,
    );
    assert.equal(reply.body.error.data.code, 'upstream_auth_required');
  });
});
