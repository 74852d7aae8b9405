/**
 * Review 11 (minting, issue 17) finding 4: whether a minted token stays within its minter's grants
 * (identity/minter-bounds.ts `beyondMinter`) compares its URL patterns with the minter's, up to
 * MAX_URL_WORK steps (tens of ms of CPU). The verdict was never kept: a token judged beyond its
 * minter is refused and not cached, so every request it makes pays the comparison again, and an
 * open virtual stream judges it again at every look. The verdict is now kept per token until the
 * next reload. The assertion is on the CPU the requests cost (this process runs the proxy).
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

const ADMIN = 'review11-verdicts-admin-0123456789abc';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
/** The token's patterns: the admin holds exactly these at mint (within, at no comparing). */
const MINTED = Array.from({ length: 10 }, (_, i) => `http://127.0.0.1:*/${i}/${'a'.repeat(470)}b`);
/**
 * The admin's after the reload: each takes in any path (`**`), so comparing one of the token's
 * with it runs the whole 500 × 500 table before it fails at the last character.
 */
const NARROWED = Array.from({ length: 20 }, (_, i) => `http://127.0.0.1:*/**${'a'.repeat(470)}c${i}`);

describe('review11 (4): a minted token’s verdict against its minter is judged once per reload', () => {
  let proxy: RunningProxy;
  let configPath = '';
  const env = () => ({
    HOST: '127.0.0.1',
    SIGNING_KEYS: keyPath,
    MCP_PROXY_CONFIG: configPath,
    RATE_LIMIT_AUTH_FAILURES_PER_IP: '0',
  });
  const keyPath = keyFile();
  const configure = (urls: string[]) =>
    writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(ADMIN), admin: true, urls }] }));

  before(async () => {
    configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review11-verdicts-')), 'proxy.json');
    configure(MINTED);
    proxy = await startProxy(env());
  });
  after(async () => {
    await proxy?.close();
  });

  it('a token refused as beyond its minter does not pay the comparison on every request', async () => {
    const minted = await mintRaw(proxy.url, { subject: 'verdicts', ttlSeconds: 600, urls: MINTED }, ADMIN);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: proxy.url, token: minted.body.token as string };
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
    assert.equal((await postProxy(caller, ping)).status, 400, 'accepted (no target named)');

    configure(NARROWED);
    proxy.app.reload(
      loadConfig({
        env: { PROXY_TOKEN: TEST_TOKEN, ALLOW_PRIVATE_NETWORKS: 'true', STORE: 'memory', ...env() },
      }),
    );
    const first = await postProxy(caller, ping);
    assert.equal(first.status, 401, JSON.stringify(first.body));
    assert.equal(first.body.error.data.code, 'token_revoked');

    const started = process.cpuUsage();
    for (let i = 0; i < 30; i++) {
      const reply = await postProxy(caller, ping);
      assert.equal(reply.status, 401, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'token_revoked');
    }
    const spent = process.cpuUsage(started);
    const cpuMs = (spent.user + spent.system) / 1000;
    assert.ok(cpuMs < 400, `30 refused requests cost ${cpuMs.toFixed(0)} ms of CPU`);
  });
});
