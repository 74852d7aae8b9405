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
 *
 * URLPATTERN-2 (same file, same setup): the early exit at the first dead DP row helps only a URL
 * that leaves every pattern early. A pattern that begins its path with `**` stays alive along any
 * path, so a 2000-character ASCII URL against 10 such patterns of 490 characters (what fits in a
 * token, within an admin's `http://127.0.0.1:*\/**`) still runs the whole 2000 × 4900 table:
 * ~140 ms of CPU per refused request, the cost review 11 (2) set out to remove.
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

describe('review11 URLPATTERN-1, -2: matching a raw URL against a grant’s patterns stays cheap', () => {
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

  /** The CPU (ms) `count` refused requests to `url` cost, with a token holding `urls`. */
  const cpuOf = async (urls: string[], url: string, count: number): Promise<number> => {
    const minted = await mintRaw(proxy.url, { subject: 'urlpattern', ttlSeconds: 600, urls }, ADMIN);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: proxy.url, token: minted.body.token as string };
    assert.ok(url.length <= 2048, `raw URL of ${url.length} characters`);
    const started = process.cpuUsage();
    for (let i = 0; i < count; i++) {
      const reply = await postProxy(caller, { mcp_server_url: url, jsonrpc: '2.0', id: 1, method: 'ping' });
      // Refused either way: outside every pattern (403), or too long as matched (400).
      assert.ok(reply.status === 403 || reply.status === 400, JSON.stringify(reply.body));
    }
    const spent = process.cpuUsage(started);
    return (spent.user + spent.system) / 1000;
  };
  /** Within the admin's pattern; each keeps the matcher alive along any path (`**` first). */
  const alive = Array.from({ length: 10 }, (_, i) => `http://127.0.0.1:*/**${'a'.repeat(470)}b${i}`);

  it('URLPATTERN-1: a URL of non-ASCII path characters costs no more than an ASCII one of the same raw length', async () => {
    const ascii = await cpuOf(alive, `http://127.0.0.1:1/${'a'.repeat(2000)}`, 4);
    const euro = await cpuOf(alive, `http://127.0.0.1:1/${'€'.repeat(2000)}`, 4);
    assert.ok(
      euro < 2 * ascii + 100,
      `4 requests with 2000 '€' cost ${euro.toFixed(0)} ms of CPU, 4 with 2000 'a' ${ascii.toFixed(0)} ms`,
    );
  });

  it('URLPATTERN-2: a 2 KB ASCII URL against patterns alive along the path is not matched to their ends', async () => {
    const cpuMs = await cpuOf(alive, `http://127.0.0.1:1/${'a'.repeat(2000)}`, 20);
    // The budget review 11 (2) set for twenty refused 2 KB-URL requests (url-pattern-cost.test.ts).
    assert.ok(
      cpuMs < 500,
      `twenty refused requests cost ${cpuMs.toFixed(0)} ms of CPU matching URL patterns`,
    );
  });
});
