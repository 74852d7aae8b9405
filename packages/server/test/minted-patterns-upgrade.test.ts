/**
 * Review 12 (second review of fix-last-2's URL patterns) URLPATTERN-5: after an upgrade, tokens
 * minted by the previous version are revoked though nothing was changed. A mint request that
 * leaves out `urls` takes the admin token's own (identity/mint-request.ts), and the previous
 * version stored them as written in the config: `http://127.0.0.1:80/**`. The config is now
 * normalised when loaded (`http://127.0.0.1/**`), the token's patterns are not
 * (identity/minted-tokens.ts `verify` keeps them as written, docs/identity.md: "Tokens minted
 * before this carry their patterns as written"), so judging the token against its minter
 * (identity/minter-bounds.ts `beyondMinter`, policy/grant-within.ts `urlsExcess`) finds its own
 * admin's pattern "outside" the admin's grant: `401 token_revoked`, "the grants of the admin
 * token that minted this token changed", for every such token, with all it reaches (configured
 * servers too). The same for any pattern whose normal form differs from how it was written (an
 * `https://…:443` port, an IDN host, a non-ASCII path, `127.1`).
 *
 * The token here is made as the previous version's `POST /auth/tokens` made it: the unchanged
 * signer (identity/minted-tokens.ts `MintedTokens.mint`) with the same key and admin, and the
 * admin's pattern as that version stored it.
 *
 * Fixed: a token's patterns are normalised when it is verified (identity/minted-tokens.ts),
 * before it is judged against its minter and matched; a pattern with no normal form is left out
 * and matches nothing (the token does not become unlimited in URLs).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MintedTokens } from '../src/identity/minted-tokens.ts';
import { SigningKeys } from '../src/identity/signing-keys.ts';
import { keyFile } from './helpers/minted.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ADMIN = 'minted-patterns-upgrade-admin-0123456789';
const UNLIMITED_ADMIN = 'minted-patterns-upgrade-unlimited-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('a token minted before patterns were normalised (review12 URLPATTERN-5)', () => {
  it('a token carrying its admin’s pattern as then written is not revoked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcpp-minted-patterns-upgrade-'));
    const key = keyFile(dir);
    const written = 'http://127.0.0.1:80/**';
    const configPath = join(dir, 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        tokens: [
          { sha256: sha256(ADMIN), admin: true, urls: [written] },
          { sha256: sha256(UNLIMITED_ADMIN), admin: true },
        ],
      }),
    );
    const proxy = await startProxy({ SIGNING_KEYS: key, MCP_PROXY_CONFIG: configPath });
    try {
      // What the previous version minted for `{ subject }` (urls left out: the admin's, as written).
      const signer = new MintedTokens(new SigningKeys({ signingKeys: [key], dataDir: dir, ephemeral: true }));
      const old = await signer.mint(
        { subject: 'before-upgrade', ttlSeconds: 600, urls: [written] },
        `static:${sha256(ADMIN)}`,
      );

      // A token minted now for the same request is accepted (the setup is right).
      const now = await fetch(`${proxy.url}/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ subject: 'after-upgrade', ttlSeconds: 600 }),
      });
      assert.equal(now.status, 201);
      const fresh = ((await now.json()) as { token: string }).token;
      const target = `http://127.0.0.1:${await freePort()}/mcp`;
      const ping = (token: string) =>
        postProxy(
          { url: proxy.url, token },
          { mcp_server_url: target, jsonrpc: '2.0', id: 1, method: 'ping' },
        );
      const freshReply = await ping(fresh);
      assert.notEqual(freshReply.status, 401, JSON.stringify(freshReply.body));

      const oldReply = await ping(old.token);
      assert.notEqual(
        oldReply.status,
        401,
        `a token minted before the upgrade, carrying its admin's own pattern: ${JSON.stringify(oldReply.body)}`,
      );

      // A pattern with no normal form matches nothing: left out, the token reaches no URL (its
      // `urls` kept, empty), not every URL as a token without `urls` would.
      const none = await signer.mint(
        { subject: 'before-upgrade', ttlSeconds: 600, urls: ['http://ü*.example/**'] },
        `static:${sha256(UNLIMITED_ADMIN)}`,
      );
      const noneReply = await ping(none.token);
      assert.equal(noneReply.status, 403, JSON.stringify(noneReply.body));
      assert.equal(noneReply.body.error.data.code, 'forbidden_server');
    } finally {
      await proxy.close();
    }
  });
});
