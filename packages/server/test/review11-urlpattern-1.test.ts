/**
 * Review 11 (second review of f7c6ba4) URLPATTERN-1: a raw upstream URL is bounded at 2048
 * characters (dispatch/targets.ts `MAX_TARGET_URL_LENGTH`, `request.url.length`) so that matching
 * it against a grant's patterns costs at most 2048 × their length. But the matcher
 * (policy/url-pattern.ts `urlMatches`) reads the URL as parsed: `protocol//host pathname`, where
 * every non-ASCII character of the path is percent-encoded. A raw `€` (one character) is matched
 * as `%E2%82%AC` (nine): a 2019-character URL of 2000 `€` is matched as 18 001 characters, nine
 * times the work the bound was set for. With patterns that stay alive along the path (a `**`
 * first), one such request costs ~0.6 s of CPU on the event loop, against ~85 ms for an ASCII URL
 * of the same raw length. The assertion is on the CPU this process (running the proxy) spends.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const ADMIN = 'review11-urlpattern-1-admin-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('review11 URLPATTERN-1: the 2048-character URL bound holds for the URL as matched', () => {
  let proxy: RunningProxy;

  before(async () => {
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review11-urlpattern-1-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({ tokens: [{ sha256: sha256(ADMIN), admin: true, urls: ['http://127.0.0.1:*/**'] }] }),
    );
    proxy = await startProxy({ HOST: '127.0.0.1', SIGNING_KEYS: keyFile(), MCP_PROXY_CONFIG: configPath });
  });
  after(async () => {
    await proxy?.close();
  });

  it('a URL of non-ASCII path characters costs no more than an ASCII one of the same raw length', async () => {
    // Within the admin's pattern; each keeps the matcher alive along any path (`**` first).
    const urls = Array.from({ length: 10 }, (_, i) => `http://127.0.0.1:*/**${'a'.repeat(470)}b${i}`);
    const minted = await mintRaw(proxy.url, { subject: 'urlpattern-1', ttlSeconds: 600, urls }, ADMIN);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: proxy.url, token: minted.body.token as string };
    const cpuOf = async (url: string): Promise<number> => {
      assert.ok(url.length <= 2048, `raw URL of ${url.length} characters`);
      const started = process.cpuUsage();
      for (let i = 0; i < 4; i++) {
        const reply = await postProxy(caller, { mcp_server_url: url, jsonrpc: '2.0', id: 1, method: 'ping' });
        // Refused either way: outside every pattern (403), or too long as matched (400).
        assert.ok(reply.status === 403 || reply.status === 400, JSON.stringify(reply.body));
      }
      const spent = process.cpuUsage(started);
      return (spent.user + spent.system) / 1000;
    };
    const ascii = await cpuOf(`http://127.0.0.1:1/${'a'.repeat(2000)}`);
    const euro = await cpuOf(`http://127.0.0.1:1/${'€'.repeat(2000)}`);
    assert.ok(
      euro < 2 * ascii + 100,
      `4 requests with 2000 '€' cost ${euro.toFixed(0)} ms of CPU, 4 with 2000 'a' ${ascii.toFixed(0)} ms`,
    );
  });
});
