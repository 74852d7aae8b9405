/**
 * Review 11 (matcher correctness) URLPATTERN-3: a URL pattern is matched as written, but the
 * target is matched as parsed (policy/url-pattern.ts `urlMatches`: `protocol//host pathname`,
 * the default port dropped, non-ASCII path characters percent-encoded, an IDN host in punycode).
 * The config accepts a pattern that spells its target the way an operator types it
 * (config/schemas.ts `urlPattern`), and that pattern then matches not even the URL it spells:
 * `http://127.0.0.1:80/**` does not reach `http://127.0.0.1:80/mcp`, nor
 * `http://127.0.0.1:<port>/café/**` reach `http://127.0.0.1:<port>/café/mcp`: the token is
 * locked out with `403 forbidden_server`. Either the pattern is normalised as the target is, or
 * the config refuses it (then loading it throws, which this test also accepts).
 *
 * Fixed: patterns are put in the form targets are matched in where they are taken in, the config
 * and a mint request (policy/url-pattern-normal.ts), or refused when they can match nothing. The
 * normal form of a pattern without wildcards is the matched form of that URL, on random URLs.
 *
 * Review 12 URLPATTERN-2: the refusal of a wildcard in a non-ASCII host label read the label as
 * written, so `http://%C3%BC*.example.com/**` (percent-encoded `ü*`) was kept as `xn--*-dha`,
 * matching `xxx£yyy.example.com` (`xn--xxxyyy-dha`) and not `übung.example.com`. Fixed: checked
 * again as parsed (a wildcard label in punycode is refused).
 * URLPATTERN-3 (lockout): percent-escapes were matched as written, hex case included, so
 * `/caf%c3%a9/**` reached neither `/café/mcp` nor `/caf%C3%A9/mcp`, and `/café/**` not a target
 * spelt `/caf%c3%a9/mcp`. Fixed: both sides read escapes in uppercase.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { matchedForm, urlMatches } from '../src/policy/url-pattern.ts';
import { normalPattern } from '../src/policy/url-pattern-normal.ts';
import { ADMIN, keyFile, mintRaw } from './helpers/minted.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'review11-urlpattern-3-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** The answer to a ping sent to `target` by a token granted `pattern`; undefined: config refused. */
async function statusFor(pattern: string, target: string): Promise<number | undefined> {
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review11-urlpattern-3-')), 'proxy.json');
  writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls: [pattern] }] }));
  const proxy = await startProxy({ MCP_PROXY_CONFIG: configPath }).catch(() => undefined);
  if (proxy === undefined) return undefined;
  try {
    const reply = await postProxy(
      { url: proxy.url, token: CALLER },
      { mcp_server_url: target, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    if (reply.status === 403) assert.equal(reply.body.error.data.code, 'forbidden_server');
    return reply.status;
  } finally {
    await proxy.close();
  }
}

describe('review11 URLPATTERN-3: a pattern reaches the URL it spells', () => {
  it('a pattern naming the default port reaches that URL', async () => {
    const status = await statusFor('http://127.0.0.1:80/**', 'http://127.0.0.1:80/mcp');
    assert.notEqual(status, 403, 'the pattern names this very URL');
  });

  it('a pattern with a non-ASCII path segment reaches that URL', async () => {
    const port = await freePort();
    const status = await statusFor(`http://127.0.0.1:${port}/café/**`, `http://127.0.0.1:${port}/café/mcp`);
    assert.notEqual(status, 403, 'the pattern names this very URL');
  });

  it('a minted pattern with a non-ASCII path segment reaches that URL; one that can match nothing is refused', async () => {
    const port = await freePort();
    const proxy = await startProxy({ ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile() });
    try {
      const minted = await mintRaw(proxy.url, {
        subject: 'normalise',
        ttlSeconds: 600,
        urls: [`http://127.0.0.1:${port}/café/**`],
      });
      assert.equal(minted.status, 201, JSON.stringify(minted.body));
      const reply = await postProxy(
        { url: proxy.url, token: minted.body.token as string },
        { mcp_server_url: `http://127.0.0.1:${port}/café/mcp`, jsonrpc: '2.0', id: 1, method: 'ping' },
      );
      assert.notEqual(reply.status, 403, JSON.stringify(reply.body));

      const refused = await mintRaw(proxy.url, {
        subject: 'normalise',
        ttlSeconds: 600,
        urls: ['https://bü*.example/mcp'],
      });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error.data.code, 'invalid_token_request');
      assert.match(
        refused.body.error.message,
        /can match nothing: a wildcard is in a host label with non-ASCII/,
      );
    } finally {
      await proxy.close();
    }
  });

  it('a configured pattern that can match nothing is refused when the config is loaded', () => {
    for (const [pattern, refusal] of [
      ['http://127.0.0.1/a/*/../b', /can match nothing: a `\.\.` segment of its path removes a wildcard/],
      // Review 12 URLPATTERN-1: targets with an encoded slash are refused (url-pattern-encoded-slash).
      ['http://127.0.0.1/a%2fb/**', /can match nothing: its path has an encoded `\/` or `\\` \(%2F, %5C\)/],
    ] as const) {
      const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-url-pattern-normalise-')), 'proxy.json');
      writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls: [pattern] }] }));
      assert.throws(
        () => loadConfig({ env: { MCP_PROXY_CONFIG: configPath, STORE: 'memory' } }),
        refusal,
        pattern,
      );
    }
  });

  it('a pattern without wildcards is normalised to the very text that URL is matched as', () => {
    const pieces = [
      'a',
      'B',
      '/',
      '.',
      '..',
      '-',
      'é',
      '%41',
      '%4a',
      '%2e',
      ' ',
      '"',
      '{',
      '\\',
      '~',
      ':',
      '@x',
    ];
    const hosts = [
      '127.0.0.1',
      '127.1',
      'EXAMPLE.com',
      'bücher.example',
      '[::1]',
      '[0:0::1]',
      'xn--bcher-kva.example',
    ];
    let state = 0x2545f491;
    const next = (below: number) => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % below;
    };
    let checked = 0;
    for (let n = 0; n < 3_000; n++) {
      const scheme = ['http', 'https', 'ws', 'wss', 'HTTP'][next(5)] as string;
      const port = ['', ':80', ':443', ':0080', ':8080'][next(5)] as string;
      const path = Array.from({ length: next(10) }, () => pieces[next(pieces.length)]).join('');
      const url = `${scheme}://${hosts[next(hosts.length)]}${port}/${path}`;
      const normal = normalPattern(url);
      const form = matchedForm(url);
      if (!('pattern' in normal) || form === undefined) continue;
      checked++;
      assert.equal(normal.pattern, form, url);
      assert.ok(urlMatches(normal.pattern, url), url);
      assert.deepEqual(normalPattern(normal.pattern), normal, `normal form of ${url} is its own`);
    }
    assert.ok(checked > 2_500, `${checked} of 3 000 random URLs checked`);
  });
});

const ENCODED_WILD_LABEL = 'http://%C3%BC*.example.com/**';

describe('review12 URLPATTERN-2: a wildcard in a percent-encoded non-ASCII host label is refused', () => {
  it('a mint request naming it is refused as one naming ü* is', async () => {
    const proxy = await startProxy({ ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile() });
    try {
      const plain = await mintRaw(proxy.url, {
        subject: 'idn',
        ttlSeconds: 600,
        urls: ['http://ü*.example.com/**'],
      });
      assert.equal(plain.status, 400, JSON.stringify(plain.body));
      const encoded = await mintRaw(proxy.url, {
        subject: 'idn',
        ttlSeconds: 600,
        urls: [ENCODED_WILD_LABEL],
      });
      assert.equal(
        encoded.status,
        400,
        `minted with ${ENCODED_WILD_LABEL}, which matches xn--xxxyyy-dha.example.com (xxx£yyy): ${encoded.status}`,
      );
      assert.equal(encoded.body.error.data.code, 'invalid_token_request');
    } finally {
      await proxy.close();
    }
  });

  it('the config refuses it, and a wildcard label written in punycode', () => {
    for (const pattern of [
      ENCODED_WILD_LABEL,
      'http://xn--*.example.com/**',
      'http://XN--bcher*.example/**',
    ]) {
      const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-url-pattern-normalise-')), 'proxy.json');
      writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls: [pattern] }] }));
      assert.throws(
        () => loadConfig({ env: { MCP_PROXY_CONFIG: configPath, STORE: 'memory' } }),
        /can match nothing: a wildcard is in a host label with non-ASCII/,
        pattern,
      );
    }
  });
});

describe('review12 URLPATTERN-3: percent-escapes are read alike in patterns and targets', () => {
  it('a pattern with lowercase escapes reaches the URL it spells, in either spelling', async () => {
    const base = `http://127.0.0.1:${await freePort()}`;
    for (const target of [`${base}/café/mcp`, `${base}/caf%C3%A9/mcp`, `${base}/caf%c3%A9/mcp`]) {
      const status = await statusFor(`${base}/caf%c3%a9/**`, target);
      assert.notEqual(status, 403, `${target}: the pattern names this very URL`);
    }
  });

  it('a pattern with a non-ASCII segment reaches that segment spelt with lowercase escapes', async () => {
    const base = `http://127.0.0.1:${await freePort()}`;
    const status = await statusFor(`${base}/café/**`, `${base}/caf%c3%a9/mcp`);
    assert.notEqual(status, 403, 'the pattern names this very URL');
  });

  it('other escapes still tell paths apart', async () => {
    const base = `http://127.0.0.1:${await freePort()}`;
    const status = await statusFor(`${base}/caf%c3%a9/**`, `${base}/caf%c3%a8/mcp`);
    assert.equal(status, 403);
  });
});
