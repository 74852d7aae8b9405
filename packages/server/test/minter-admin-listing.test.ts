/**
 * Review 11 (second review of 002aeb8 and the minter bounds) MINTER-1: a token digest listed
 * twice is, for authentication, its FIRST listing (identity/tokens.ts `verify`); the comment on
 * `#admins` says the admin grants are taken the same way, but the loop only ever records admin
 * listings, so a later `admin: true` listing wins over an earlier plain one, and `adminKeys()`
 * (which maps minted tokens' claims back to their minter) lists it too. An operator who lists
 * the admin token in PROXY_TOKENS (read before the config file's tokens) makes it a plain token:
 * it can no longer mint (403), yet the tokens it minted stay accepted as "within their minter",
 * though their minter, as authentication sees it now, is no admin at all. Fixed: identity/tokens.ts
 * takes the admin map and `adminKeys()` from each digest's first listing, as `verify()` does.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const ADMIN = 'review11-minter-1-admin-0123456789abcd';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };

describe('review11 MINTER-1: an admin token demoted by an earlier plain listing no longer vouches for its tokens', () => {
  let proxy: RunningProxy;
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review11-minter-1-')), 'proxy.json');
  const env = { HOST: '127.0.0.1', SIGNING_KEYS: keyFile(), MCP_PROXY_CONFIG: configPath };

  before(async () => {
    writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(ADMIN), admin: true }] }));
    proxy = await startProxy(env);
  });
  after(async () => {
    await proxy?.close();
  });

  it('its minted tokens are refused once it authenticates as a plain token', async () => {
    const minted = await mintRaw(proxy.url, { subject: 'minter-1', ttlSeconds: 600 }, ADMIN);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: proxy.url, token: minted.body.token as string };
    assert.equal((await postProxy(caller, PING)).status, 400, 'accepted (no target named)');

    // The same token, also in PROXY_TOKENS: its first listing (plain) is the one it authenticates as.
    proxy.app.reload(
      loadConfig({
        env: {
          PROXY_TOKENS: `${TEST_TOKEN},${ADMIN}`,
          ALLOW_PRIVATE_NETWORKS: 'true',
          STORE: 'memory',
          ...env,
        },
      }),
    );
    const mintAgain = await mintRaw(proxy.url, { subject: 'minter-1', ttlSeconds: 600 }, ADMIN);
    assert.equal(mintAgain.status, 403, `no longer an admin: ${JSON.stringify(mintAgain.body)}`);

    const reply = await postProxy(caller, PING);
    assert.equal(
      reply.status,
      401,
      `a token of a minter that is no admin now: ${JSON.stringify(reply.body)}`,
    );
    assert.equal(reply.body.error.data.code, 'token_revoked');
  });
});
