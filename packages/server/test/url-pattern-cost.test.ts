/**
 * Review 10 (minting, issue 17) MINT-1: a minted token's URL pattern is matched against the
 * caller's URL with a backtracking regular expression (policy/grants.ts `patternRegExp`: `**` in
 * a path is `.*`). Minted tokens may now carry `urls`, and an admin limited to
 * `http://127.0.0.1:*\/**` may mint `http://127.0.0.1:*\/**a**a**a**a**a**a**b` (it is within).
 * One raw-URL request with that token (`…/aaaa…a`, no `b`) then makes the matcher try every way
 * of placing the `a`s: seconds of CPU on the event loop (minutes with a few more `**a`), during
 * which the proxy answers nobody. The assertion is on the CPU the one request costs (this
 * process runs the proxy), not on wall time: load does not inflate it much.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const LIMITED_ADMIN = 'review10-mint-1-admin-0123456789abc';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('review10 MINT-1: a minted URL pattern cannot make one request burn seconds of CPU', () => {
  let proxy: RunningProxy;

  before(async () => {
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review10-mint-1-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        tokens: [{ sha256: sha256(LIMITED_ADMIN), admin: true, urls: ['http://127.0.0.1:*/**'] }],
      }),
    );
    proxy = await startProxy({ HOST: '127.0.0.1', SIGNING_KEYS: keyFile(), MCP_PROXY_CONFIG: configPath });
  });
  after(async () => {
    await proxy?.close();
  });

  it('a raw-URL request with a token minted within the admin’s pattern costs well under a second', async () => {
    // Six `**a` groups: about 3 s of CPU on an idle machine today; each more multiplies it.
    const pattern = `http://127.0.0.1:*/${'**a'.repeat(6)}**b`;
    const minted = await mintRaw(
      proxy.url,
      { subject: 'mint-1', ttlSeconds: 600, urls: [pattern] },
      LIMITED_ADMIN,
    );
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: proxy.url, token: minted.body.token as string };

    const started = process.cpuUsage();
    const reply = await postProxy(caller, {
      mcp_server_url: `http://127.0.0.1:1/${'a'.repeat(60)}`,
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    });
    const spent = process.cpuUsage(started);
    const cpuMs = (spent.user + spent.system) / 1000;
    // The URL is outside the pattern (no `b`): refused as a server the grant does not reach.
    assert.equal(reply.status, 403, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'forbidden_server');
    assert.ok(cpuMs < 500, `one request cost ${cpuMs.toFixed(0)} ms of CPU matching the URL pattern`);
  });
});
