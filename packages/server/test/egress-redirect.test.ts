/**
 * Redirect policy: `vetRedirect()` refuses by default and, when following is enabled, counts hops
 * and vets every target again exactly like `vet()`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEgressGuard } from '../src/egress/guard.ts';
import { answer, mapResolver, policy, refusalOf } from './fixtures/egress-support.ts';

const zone = new Map([
  ['mcp.example.com', [answer('93.184.215.14')]],
  ['other.example.com', [answer('151.101.1.69')]],
  ['internal.example.com', [answer('10.0.0.8')]],
]);
const FROM = new URL('https://mcp.example.com/mcp');

describe('redirects with the default policy', () => {
  it('refuses every redirect, even to the same origin', async () => {
    const guard = createEgressGuard(policy(), { resolver: mapResolver(zone) });
    assert.equal(await refusalOf(guard.vetRedirect(FROM, '/mcp/', 1)), 'redirect_refused');
    await assert.rejects(guard.vetRedirect(FROM, '/mcp/', 1), /does not follow redirects/);
    assert.equal(
      await refusalOf(guard.vetRedirect(FROM, 'https://other.example.com/', 1)),
      'redirect_refused',
    );
    await guard.close();
  });
});

describe('redirects with followRedirects: 2', () => {
  const resolver = mapResolver(zone);
  const guard = createEgressGuard(policy({ followRedirects: 2, allowedPorts: [443] }), { resolver });

  it('follows a relative location against the current URL', async () => {
    assert.equal(
      (await guard.vetRedirect(FROM, '/v2/mcp?x=1', 1)).href,
      'https://mcp.example.com/v2/mcp?x=1',
    );
  });

  it('follows an absolute location to another allowed host, resolving it again', async () => {
    resolver.calls.length = 0;
    assert.equal(
      (await guard.vetRedirect(FROM, 'https://other.example.com/mcp', 2)).href,
      'https://other.example.com/mcp',
    );
    assert.deepEqual(resolver.calls, ['other.example.com']);
  });

  it('follows a scheme-relative location', async () => {
    assert.equal(
      (await guard.vetRedirect(FROM, '//other.example.com/x', 1)).href,
      'https://other.example.com/x',
    );
  });

  it('refuses hops beyond the limit, and nonsense hop numbers', async () => {
    assert.equal(await refusalOf(guard.vetRedirect(FROM, '/next', 3)), 'redirect_refused');
    assert.equal(await refusalOf(guard.vetRedirect(FROM, '/next', 0)), 'redirect_refused');
    assert.equal(await refusalOf(guard.vetRedirect(FROM, '/next', 1.5)), 'redirect_refused');
  });

  it('vets the new target: private, obfuscated, metadata, scheme, port, credentials', async () => {
    const cases: readonly (readonly [string, string])[] = [
      ['https://127.0.0.1/', 'address_forbidden'],
      ['https://[::ffff:10.0.0.1]/', 'address_forbidden'],
      ['https://internal.example.com/', 'address_forbidden'],
      ['https://0x7f.1/', 'host_forbidden'],
      ['https://2130706433/', 'host_forbidden'],
      ['https://metadata.google.internal/', 'host_forbidden'],
      ['https://169.254.169.254/latest/meta-data/', 'address_forbidden'],
      ['https://localhost/', 'address_forbidden'],
      // Review F3: a scheme-relative Location is judged as written, like an absolute one.
      ['//0x7f.1/', 'host_forbidden'],
      ['//2130706433/', 'host_forbidden'],
      ['//0177.0.0.1:443/x', 'host_forbidden'],
      ['//127.0.0.1/', 'address_forbidden'],
      // Review F4: only http: and https: hops are followed.
      ['file:///etc/passwd', 'redirect_refused'],
      ['gopher://other.example.com/', 'redirect_refused'],
      ['wss://other.example.com/', 'redirect_refused'],
      ['ws://other.example.com:443/', 'redirect_refused'],
      ['https://other.example.com:8443/', 'port_not_allowed'],
      ['https://user:pw@other.example.com/', 'host_forbidden'],
      ['https://missing.example.com/', 'dns_failed'],
    ];
    for (const [location, reason] of cases) {
      assert.equal(await refusalOf(guard.vetRedirect(FROM, location, 1)), reason, location);
    }
  });

  it('refuses a downgrade from https to http, and any hop to ws or wss', async () => {
    assert.equal(
      await refusalOf(guard.vetRedirect(FROM, 'http://other.example.com:443/', 1)),
      'redirect_refused',
    );
    const ws = new URL('wss://mcp.example.com/ws');
    assert.equal(
      await refusalOf(guard.vetRedirect(ws, 'ws://mcp.example.com:443/ws', 1)),
      'redirect_refused',
    );
  });

  it('allows an upgrade from http to https', async () => {
    const plain = new URL('http://mcp.example.com:443/mcp');
    assert.equal((await guard.vetRedirect(plain, 'https://mcp.example.com/mcp', 1)).protocol, 'https:');
  });

  it('refuses an unparseable location', async () => {
    assert.equal(await refusalOf(guard.vetRedirect(FROM, 'https://exa<mple.com/', 1)), 'redirect_refused');
  });

  it('refuses an ambiguous location, absolute or scheme-relative, before resolving it', async () => {
    resolver.calls.length = 0;
    for (const location of [
      'https://other.example.com\\@127.0.0.1/',
      '\\\\other.example.com\\@127.0.0.1/',
      '/\\other.example.com/',
      '//other.example.com@@127.0.0.1/',
      'https://[oops/',
    ]) {
      assert.equal(await refusalOf(guard.vetRedirect(FROM, location, 1)), 'ambiguous_url', location);
    }
    assert.deepEqual(resolver.calls, []);
    // A plain relative path with a backslash later on is a path, not an authority.
    assert.equal((await guard.vetRedirect(FROM, '/a\\b', 1)).pathname, '/a/b');
  });

  it('closes', async () => {
    await guard.close();
  });
});

describe('redirects under an allowlist', () => {
  it('refuses a hop off the allowlist', async () => {
    const guard = createEgressGuard(policy({ followRedirects: 1, allowedHosts: ['mcp.example.com'] }), {
      resolver: mapResolver(zone),
    });
    assert.equal((await guard.vetRedirect(FROM, '/moved', 1)).pathname, '/moved');
    assert.equal(
      await refusalOf(guard.vetRedirect(FROM, 'https://other.example.com/', 1)),
      'not_in_allowlist',
    );
    await guard.close();
  });
});
