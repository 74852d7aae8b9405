/**
 * Review 10 (minting, issue 17) MINT-3: judging requested URL patterns against the admin's costs
 * the product of their lengths (policy/grant-within.ts `patternWithin`, for every requested
 * pattern against every one of the admin's until one holds it), and the request is bounded
 * (64 × 512 characters) but the admin's list is not. An admin token limited to a hundred upstream
 * patterns (an app allowed a list of tenants' hosts) makes each `POST /auth/tokens` with 64 long
 * patterns, each within its last one, cost about a second of CPU on the event loop, before the
 * token is refused anyway for not fitting in a header (patterns past 8 KB never can). At the
 * default 1,200 requests a minute that admin keeps the proxy busy for everyone. The assertion is
 * on the CPU the one request costs (this process runs the proxy), not on wall time.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const LISTED_ADMIN = 'review10-mint-3-admin-0123456789abc';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
/** A hundred tenants' hosts, then the pattern the requested ones are within. */
const ADMIN_URLS = [
  ...Array.from({ length: 100 }, (_, i) => `https://tenant-${i}.mcp.example.com/v1/**`),
  'https://api.example.com/**',
];

describe('review10 MINT-3: judging requested URL patterns costs bounded CPU whatever the admin holds', () => {
  let proxy: RunningProxy;

  before(async () => {
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review10-mint-3-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({ tokens: [{ sha256: sha256(LISTED_ADMIN), admin: true, urls: ADMIN_URLS }] }),
    );
    proxy = await startProxy({ HOST: '127.0.0.1', SIGNING_KEYS: keyFile(), MCP_PROXY_CONFIG: configPath });
  });
  after(async () => {
    await proxy?.close();
  });

  it('one mint request with 64 long patterns costs well under a second', async () => {
    const urls = Array.from(
      { length: 64 },
      (_, i) => `https://api.example.com/${'*a'.repeat(240)}${String(i).padStart(2, '0')}`,
    );
    assert.ok(urls.every((url) => url.length <= 512));
    // Warm-up: the first mint loads jose and reads the key.
    assert.equal((await mintRaw(proxy.url, { subject: 'warm' }, LISTED_ADMIN)).status, 201);

    const started = process.cpuUsage();
    const reply = await mintRaw(proxy.url, { subject: 'mint-3', urls }, LISTED_ADMIN);
    const spent = process.cpuUsage(started);
    const cpuMs = (spent.user + spent.system) / 1000;
    // Within the admin's grant, but 32 KB of patterns cannot fit in a token: refused either way.
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'invalid_token_request');
    assert.match(reply.body.error.message, /too large for a header/);
    assert.ok(cpuMs < 250, `one mint request cost ${cpuMs.toFixed(0)} ms of CPU comparing URL patterns`);
  });

  it('patterns that fit in a token but are costly to compare with the admin’s are refused, not compared at length', async () => {
    // 10 × 500 characters fit in a token; comparing them with the admin's 101 patterns would be
    // about 23 million steps (the work cap is 4 million).
    const urls = Array.from(
      { length: 10 },
      (_, i) => `https://api.example.com/${'*a'.repeat(236)}${String(i).padStart(2, '0')}`,
    );
    assert.ok(urls.every((url) => url.length <= 500));
    const started = process.cpuUsage();
    const reply = await mintRaw(proxy.url, { subject: 'mint-3-costly', urls }, LISTED_ADMIN);
    const spent = process.cpuUsage(started);
    const cpuMs = (spent.user + spent.system) / 1000;
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(reply.body.error.data.code, 'invalid_token_request');
    assert.match(reply.body.error.message, /urls: too many or too long patterns to compare/);
    assert.ok(cpuMs < 250, `one mint request cost ${cpuMs.toFixed(0)} ms of CPU comparing URL patterns`);
  });
});
