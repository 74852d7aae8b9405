/**
 * Operator controls: allowlist (names, wildcards, CIDRs), denylist, ports, policy validation and
 * the start-up description.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEgressGuard } from '../src/egress/guard.ts';
import type { EgressGuard, EgressPolicy } from '../src/egress/types.ts';
import { answer, mapResolver, policy, refusalOf } from './fixtures/egress-support.ts';

const zone = new Map([
  ['a.example.com', [answer('93.184.215.14')]],
  ['deep.a.example.com', [answer('93.184.215.14')]],
  ['example.com', [answer('93.184.215.14')]],
  ['evil-example.com', [answer('45.33.32.156')]],
  ['onprem.example.com', [answer('10.1.2.3')]],
  ['loop.example.com', [answer('127.0.0.1')]],
  ['meta.example.com', [answer('169.254.169.254')]],
  ['zero.example.com', [answer('0.0.0.0')]],
  ['in-range.test', [answer('10.1.5.5')]],
  ['half-in-range.test', [answer('10.1.5.5'), answer('8.8.8.8')]],
  ['public.test', [answer('8.8.8.8')]],
  ['google-dns.test', [answer('8.8.4.4')]],
  ['secret.example.com', [answer('93.184.215.14')]],
]);

async function verdict(guard: EgressGuard, url: string): Promise<string> {
  return guard.vet(url).then(
    () => 'allow',
    (error: unknown) => refusalOf(Promise.reject(error)),
  );
}

async function expectVerdicts(p: EgressPolicy, table: Record<string, string>): Promise<string[]> {
  const resolver = mapResolver(zone);
  const guard = createEgressGuard(p, { resolver });
  try {
    for (const [url, expected] of Object.entries(table))
      assert.equal(await verdict(guard, url), expected, url);
  } finally {
    await guard.close();
  }
  return resolver.calls;
}

describe('allowlist', () => {
  it('permits only listed names and wildcard subdomains, without asking DNS about others', async () => {
    const calls = await expectVerdicts(
      policy({ allowedHosts: ['*.a.example.com', 'a.example.com', 'example.com'] }),
      {
        'https://a.example.com/': 'allow',
        'https://deep.a.example.com/': 'allow',
        'https://A.EXAMPLE.COM./': 'allow',
        'https://example.com/': 'allow',
        'https://evil-example.com/': 'not_in_allowlist',
        'https://public.test/': 'not_in_allowlist',
        'https://8.8.8.8/': 'not_in_allowlist',
        'https://[2606:4700::1]/': 'not_in_allowlist',
      },
    );
    assert.ok(!calls.includes('evil-example.com') && !calls.includes('public.test'));
  });

  it('a wildcard does not match the bare domain or look-alike suffixes', async () => {
    await expectVerdicts(policy({ allowedHosts: ['*.example.com'] }), {
      'https://a.example.com/': 'allow',
      'https://example.com/': 'not_in_allowlist',
      'https://evil-example.com/': 'not_in_allowlist',
    });
  });

  it('an allowlisted name may resolve privately, but never to metadata or 0.0.0.0', async () => {
    await expectVerdicts(policy({ allowedHosts: ['*.example.com'] }), {
      'https://onprem.example.com/': 'allow',
      'https://loop.example.com/': 'allow',
      'https://meta.example.com/': 'address_forbidden',
      'https://zero.example.com/': 'address_forbidden',
      'https://metadata.google.internal/': 'host_forbidden',
    });
  });

  it('CIDR and address entries permit private addresses inside them only', async () => {
    const calls = await expectVerdicts(
      policy({ allowedHosts: ['10.1.0.0/16', '2001:db8::/32', '203.0.113.7', '[fd00::7]'] }),
      {
        'http://10.1.2.3/': 'allow',
        'http://10.1.255.255/': 'allow',
        'http://10.2.0.1/': 'not_in_allowlist',
        'http://10.0.255.255/': 'not_in_allowlist',
        'http://[::ffff:10.1.2.3]/': 'allow',
        'http://[2001:db8::1]/': 'allow',
        'http://[2001:db9::1]/': 'not_in_allowlist',
        'http://203.0.113.7/': 'allow',
        'http://203.0.113.8/': 'not_in_allowlist',
        'http://[fd00::7]/': 'allow',
        'http://[fd00::8]/': 'not_in_allowlist',
        'http://in-range.test/': 'allow',
        'http://half-in-range.test/': 'not_in_allowlist',
        'http://public.test/': 'not_in_allowlist',
        'http://localhost/': 'not_in_allowlist',
      },
    );
    assert.ok(
      calls.includes('in-range.test'),
      'with CIDR entries, names are resolved and their answers matched',
    );
  });

  it('never opens metadata or meaningless addresses, however wide the CIDR', async () => {
    await expectVerdicts(policy({ allowedHosts: ['0.0.0.0/0', '::/0', '169.254.0.0/16'] }), {
      'http://169.254.169.254/': 'address_forbidden',
      'http://169.254.1.1/': 'allow',
      'http://0.0.0.0/': 'address_forbidden',
      'http://255.255.255.255/': 'address_forbidden',
      'http://[fd00:ec2::254]/': 'address_forbidden',
      'http://[ff02::1]/': 'address_forbidden',
      'http://[::]/': 'address_forbidden',
      'http://10.0.0.1/': 'allow',
      'http://8.8.8.8/': 'allow',
    });
  });
});

describe('denylist', () => {
  it('refuses listed names, wildcards, CIDRs and their embeddings before anything else', async () => {
    const calls = await expectVerdicts(
      policy({
        allowPrivateNetworks: true,
        allowedHosts: ['*.example.com', '0.0.0.0/0', '::/0'],
        deniedHosts: ['secret.example.com', '*.evil.test', '8.8.4.0/24', '2606:4700::/32', '10.9.9.9'],
      }),
      {
        'https://secret.example.com/': 'host_forbidden',
        'https://SECRET.example.com./': 'host_forbidden',
        'https://a.evil.test/': 'host_forbidden',
        'https://x.y.evil.test/': 'host_forbidden',
        'https://8.8.4.4/': 'host_forbidden',
        'https://google-dns.test/': 'host_forbidden',
        'https://[::ffff:8.8.4.4]/': 'host_forbidden',
        'https://[64:ff9b::808:404]/': 'host_forbidden',
        'https://[2002:808:404::1]/': 'host_forbidden',
        'https://[2606:4700::1111]/': 'host_forbidden',
        'https://10.9.9.9/': 'host_forbidden',
        'https://10.9.9.10/': 'allow',
        'https://a.example.com/': 'allow',
        'https://8.8.8.8/': 'allow',
      },
    );
    assert.ok(!calls.includes('secret.example.com'), 'a denied name is refused without DNS');
  });
});

describe('ports', () => {
  it('judges a URL without a port by its scheme default', async () => {
    await expectVerdicts(policy({ allowedPorts: [443] }), {
      'https://a.example.com/': 'allow',
      'wss://a.example.com/': 'allow',
      'http://a.example.com/': 'port_not_allowed',
      'ws://a.example.com/': 'port_not_allowed',
      'https://a.example.com:8443/': 'port_not_allowed',
    });
  });

  it('allows any port but 0 when the list is empty', async () => {
    await expectVerdicts(policy(), {
      'https://a.example.com:1/': 'allow',
      'https://a.example.com:65535/': 'allow',
      'https://a.example.com:0/': 'port_not_allowed',
    });
  });
});

describe('policy validation', () => {
  const bad: readonly (readonly [string, Partial<EgressPolicy>])[] = [
    ['prefix too long', { allowedHosts: ['10.0.0.0/33'] }],
    ['IPv6 prefix too long', { deniedHosts: ['2001:db8::/129'] }],
    ['non-canonical IPv4 CIDR', { allowedHosts: ['0x7f.0.0.0/8'] }],
    ['non-canonical IPv4 name', { allowedHosts: ['0x7f.1'] }],
    ['short IPv4', { deniedHosts: ['10.1'] }],
    ['URL instead of a host', { allowedHosts: ['https://example.com'] }],
    ['bare wildcard', { allowedHosts: ['*'] }],
    ['wildcard in the middle', { allowedHosts: ['a.*.example.com'] }],
    ['empty entry', { deniedHosts: ['  '] }],
    ['zone id', { allowedHosts: ['fe80::1%eth0'] }],
    ['negative redirects', { followRedirects: -1 }],
    ['fractional redirects', { followRedirects: 1.5 }],
    ['port out of range', { allowedPorts: [70_000] }],
    ['port zero', { allowedPorts: [0] }],
  ];
  for (const [label, overrides] of bad) {
    it(`rejects ${label}`, () => {
      assert.throws(() => createEgressGuard(policy(overrides)), TypeError);
    });
  }

  it('names the offending entry', () => {
    assert.throws(
      () => createEgressGuard(policy({ deniedHosts: ['ok.test', '10.0.0.0/99'] })),
      /deniedHosts.*10\.0\.0\.0\/99/,
    );
  });

  it('accepts every documented entry form', async () => {
    const guard = createEgressGuard(
      policy({
        allowedHosts: [
          'Example.COM.',
          '*.example.net',
          '10.0.0.0/8',
          '2001:db8::/32',
          '[2001:db8::1]',
          '::ffff:10.0.0.0/104',
        ],
      }),
    );
    await guard.close();
  });
});

describe('describe()', () => {
  it('summarises the default policy', async () => {
    const guard = createEgressGuard(policy());
    assert.equal(
      guard.describe(),
      'egress: private networks blocked; allowlist none; denylist none; ports any; redirects not followed; cloud metadata always blocked',
    );
    await guard.close();
  });

  it('summarises lists, ports and redirects', async () => {
    const guard = createEgressGuard(
      policy({
        allowPrivateNetworks: true,
        allowedHosts: ['*.example.com', '203.0.113.0/24'],
        deniedHosts: ['a.test', 'b.test', 'c.test', 'd.test', 'e.test', 'f.test', 'g.test'],
        allowedPorts: [443, 8443],
        followRedirects: 3,
      }),
    );
    assert.equal(
      guard.describe(),
      'egress: private networks ALLOWED; allowlist 2 entries (*.example.com, 203.0.113.0/24); ' +
        'denylist 7 entries (a.test, b.test, c.test, d.test, e.test, … 2 more); ports 443, 8443; ' +
        'redirects followed up to 3 hops, each vetted again; cloud metadata always blocked',
    );
    await guard.close();
  });

  it('uses the singular for one entry', async () => {
    const guard = createEgressGuard(policy({ allowedHosts: ['mcp.example.com'] }));
    assert.match(guard.describe(), /allowlist 1 entry \(mcp\.example\.com\)/);
    await guard.close();
  });
});
