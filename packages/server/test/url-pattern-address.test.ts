/**
 * Review 12 (second review of fix-last-2's URL patterns) URLPATTERN-4: an address pattern with a
 * wildcard in its LAST label reaches domain names. Patterns are normalised like URLs
 * (policy/url-pattern-normal.ts `normalHost`); `10.0.*.1` cannot be parsed as a URL host (its
 * last label is a number, so it must be an address) and is "kept as written" (docs/identity.md),
 * where its `*` only ever meets the numbers of a canonical IPv4 target. But `127.0.0.*` parses:
 * a last label that is no number makes the host a domain name, and the pattern is kept as that
 * domain. Its `*` then matches any label, so a grant an operator writes for the loopback range,
 * `http://127.0.0.*:<port>/**`, also reaches `http://127.0.0.com:<port>/` — a name in the public
 * DNS (`0.0.com`), pointing wherever its owner likes. The same for `10.0.0.*`, `192.168.1.*`.
 * Expected: a pattern whose host is an address with wildcards matches addresses only (or is
 * refused). Here the name is resolved by an injected resolver to a loopback address, so no
 * query leaves the machine; the assertion is on the grant: `403 forbidden_server`.
 *
 * Fixed: a pattern whose host is digits, dots and wildcards (a digit among them) matches IPv4
 * hosts only (policy/url-pattern.ts), so its wildcards stand for digits; and a pattern is within
 * such a one only if it is one too (a minted `127.0.0.com` is not within `127.0.0.*`).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { answer, mapResolver } from './fixtures/egress-support.ts';
import { keyFile, mintRaw } from './helpers/minted.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'url-pattern-address-caller-0123456789';
const ADMIN = 'url-pattern-address-admin-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('an address pattern with wildcards reaches no domain name (review12 URLPATTERN-4)', () => {
  it('http://127.0.0.*:<port>/** does not reach http://127.0.0.com:<port>/', async () => {
    const port = await freePort();
    const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-url-pattern-address-')), 'proxy.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        tokens: [
          { sha256: sha256(CALLER), urls: [`http://127.0.0.*:${port}/**`, `http://10.**/**`] },
          { sha256: sha256(ADMIN), admin: true, urls: [`http://127.0.0.*:${port}/**`] },
        ],
      }),
    );
    const resolver = mapResolver(
      new Map([
        ['127.0.0.com', [answer('127.0.0.1')]],
        ['10.evil.example', [answer('127.0.0.1')]],
      ]),
    );
    const proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, SIGNING_KEYS: keyFile() }, { resolver });
    try {
      const ping = (url: string) =>
        postProxy(
          { url: proxy.url, token: CALLER },
          { mcp_server_url: url, jsonrpc: '2.0', id: 1, method: 'ping' },
        );
      // The loopback range the operator meant is reached (nothing listens: not a 403).
      const loopback = await ping(`http://127.0.0.9:${port}/mcp`);
      assert.notEqual(loopback.status, 403, JSON.stringify(loopback.body));

      const domain = await ping(`http://127.0.0.com:${port}/mcp`);
      assert.equal(
        domain.status,
        403,
        `a grant for 127.0.0.* let the token name the domain 127.0.0.com (resolved: ${resolver.calls.join(', ') || 'no'}): ${JSON.stringify(domain.body)}`,
      );
      assert.equal(domain.body.error.data.code, 'forbidden_server');

      // `**` spans labels and the port, still over digits only.
      const wide = await ping(`http://10.evil.example:${port}/mcp`);
      assert.equal(wide.status, 403, JSON.stringify(wide.body));

      // Minting: an address within the admin's pattern is, a name spelt like one is not.
      const within = await mintRaw(
        proxy.url,
        { subject: 'address', ttlSeconds: 600, urls: [`http://127.0.0.7:${port}/**`] },
        ADMIN,
      );
      assert.equal(within.status, 201, JSON.stringify(within.body));
      const named = await mintRaw(
        proxy.url,
        { subject: 'address', ttlSeconds: 600, urls: [`http://127.0.0.com:${port}/**`] },
        ADMIN,
      );
      assert.equal(named.status, 400, JSON.stringify(named.body));
      assert.match(
        named.body.error.message,
        /urls: "http:\/\/127\.0\.0\.com:\d+\/\*\*" reaches URLs the admin token may not/,
      );
    } finally {
      await proxy.close();
    }
  });
});
