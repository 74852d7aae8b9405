/**
 * Review 10 (minting, issue 17) MINT-1: a minted token's URL pattern is matched against the
 * caller's URL with a backtracking regular expression (policy/grants.ts `patternRegExp`: `**` in
 * a path is `.*`). Minted tokens may now carry `urls`, and an admin limited to
 * `http://127.0.0.1:*\/**` may mint `http://127.0.0.1:*\/**a**a**a**a**a**a**b` (it is within).
 * One raw-URL request with that token (`…/aaaa…a`, no `b`) then makes the matcher try every way
 * of placing the `a`s: seconds of CPU on the event loop (minutes with a few more `**a`), during
 * which the proxy answers nobody. The assertion is on the CPU the one request costs (this
 * process runs the proxy), not on wall time: load does not inflate it much.
 *
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
 * Fixed: the bound counts the parsed form too (dispatch/targets.ts), and the matcher reads a URL
 * against 32 pattern units a word operation (policy/url-pattern.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
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
    proxy = await startProxy({
      HOST: '127.0.0.1',
      SIGNING_KEYS: keyFile(),
      MCP_PROXY_CONFIG: configPath,
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
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

  it('review11: a raw URL over 2048 characters is refused on /mcp and /ws as POST /proxy refuses it', async () => {
    const minted = await mintRaw(
      proxy.url,
      { subject: 'long-url', ttlSeconds: 600, urls: ['http://127.0.0.1:*/**'] },
      LIMITED_ADMIN,
    );
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const token = minted.body.token as string;
    const long = `http://127.0.0.1:1/${'a'.repeat(15_000)}`;

    const viaProxy = await postProxy(
      { url: proxy.url, token },
      { mcp_server_url: long, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(viaProxy.status, 400, JSON.stringify(viaProxy.body));
    assert.equal(viaProxy.body.error.data.code, 'invalid_envelope');

    const viaMcp = await fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': token,
        'x-mcp-server-url': long,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    const mcpBody = (await viaMcp.json()) as { error: { data: { code: string; field?: string } } };
    assert.equal(viaMcp.status, 400, JSON.stringify(mcpBody));
    assert.equal(mcpBody.error.data.code, 'invalid_envelope');
    assert.equal(mcpBody.error.data.field, 'mcp_server_url');

    const wsUrl = `${proxy.url.replace(/^http/, 'ws')}/ws?mcp_server_url=${encodeURIComponent(long)}`;
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = new WebSocket(wsUrl, ['mcp', `proxy-token.${token}`]);
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      socket.once('open', () => reject(new Error('opened')));
      socket.once('error', () => {});
    });
    assert.equal(refused.status, 400, refused.body);
    assert.equal(JSON.parse(refused.body).error.data.code, 'invalid_envelope');
  });

  it('review11: a long raw URL that leaves every pattern early is not matched to their ends', async () => {
    // 10 patterns of 500 characters (what fits in a token), each within the admin's: a URL of 2048
    // characters cost 2048 × 5000 steps per request (about 90 ms of CPU) though it differs from all
    // of them at its first path character.
    const urls = Array.from(
      { length: 10 },
      (_, i) => `http://127.0.0.1:*/${String(i).padStart(2, '0')}${'a'.repeat(480)}`,
    );
    const minted = await mintRaw(proxy.url, { subject: 'early-out', ttlSeconds: 600, urls }, LIMITED_ADMIN);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const caller = { url: proxy.url, token: minted.body.token as string };
    const envelope = {
      mcp_server_url: `http://127.0.0.1:1/b${'a'.repeat(2000)}`,
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    };
    const started = process.cpuUsage();
    for (let i = 0; i < 20; i++) {
      const reply = await postProxy(caller, envelope);
      assert.equal(reply.status, 403, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'forbidden_server');
    }
    const spent = process.cpuUsage(started);
    const cpuMs = (spent.user + spent.system) / 1000;
    assert.ok(
      cpuMs < 500,
      `twenty refused requests cost ${cpuMs.toFixed(0)} ms of CPU matching URL patterns`,
    );
  });

  /** The CPU (ms) `count` refused requests to `url` cost, with a token holding `urls`. */
  const cpuOf = async (urls: string[], url: string, count: number): Promise<number> => {
    const minted = await mintRaw(proxy.url, { subject: 'urlpattern', ttlSeconds: 600, urls }, LIMITED_ADMIN);
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
    // Refused for its length as matched (18 001 characters), as a raw URL that long is.
    const minted = await mintRaw(proxy.url, { subject: 'euro', ttlSeconds: 600, urls: alive }, LIMITED_ADMIN);
    const reply = await postProxy(
      { url: proxy.url, token: minted.body.token as string },
      { mcp_server_url: `http://127.0.0.1:1/${'€'.repeat(2000)}`, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'invalid_envelope');
  });

  it('URLPATTERN-2: a 2 KB ASCII URL against patterns alive along the path is not matched to their ends', async () => {
    const cpuMs = await cpuOf(alive, `http://127.0.0.1:1/${'a'.repeat(2000)}`, 20);
    // The budget review 11 (2) set for twenty refused 2 KB-URL requests (the test above).
    assert.ok(
      cpuMs < 500,
      `twenty refused requests cost ${cpuMs.toFixed(0)} ms of CPU matching URL patterns`,
    );
  });
});
