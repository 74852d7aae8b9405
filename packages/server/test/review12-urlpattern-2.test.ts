/**
 * Review 12 (second review of fix-last-2's URL patterns) URLPATTERN-2: a wildcard in a non-ASCII
 * host label is refused (policy/url-pattern-normal.ts `normalHost`: "punycode would scramble
 * it"), but the check reads the label as written, before URL parsing percent-decodes it. Written
 * percent-encoded, `http://%C3%BC*.example.com/**` (meant: labels that begin with `ü`) passes: it
 * is decoded to `ü*`, put in punycode as `xn--*-dha`, and kept. That pattern matches what no one
 * wrote: `xxx£yyy.example.com` (`xn--xxxyyy-dha`), `xx©yyy.example.com`, while `übung.example.com`
 * (`xn--bung-kva`) is not matched. It must be refused as `ü*` is, in a mint request and in the
 * config.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { ADMIN, keyFile, mintRaw } from './helpers/minted.ts';
import { startProxy } from './helpers/proxy.ts';

const ENCODED = 'http://%C3%BC*.example.com/**';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

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
      const encoded = await mintRaw(proxy.url, { subject: 'idn', ttlSeconds: 600, urls: [ENCODED] });
      assert.equal(
        encoded.status,
        400,
        `minted with ${ENCODED}, which matches xn--xxxyyy-dha.example.com (xxx£yyy): ${encoded.status}`,
      );
      assert.equal(encoded.body.error.data.code, 'invalid_token_request');
    } finally {
      await proxy.close();
    }
  });

  it('the config refuses it', () => {
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review12-urlpattern-2-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({ tokens: [{ sha256: sha256('review12-urlpattern-2-caller-0123'), urls: [ENCODED] }] }),
    );
    assert.throws(
      () => loadConfig({ env: { MCP_PROXY_CONFIG: configPath, STORE: 'memory' } }),
      /can match nothing: a wildcard is in a host label with non-ASCII/,
    );
  });
});
