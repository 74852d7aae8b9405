/**
 * Resolve-check-pin: injected resolvers, DNS rebinding between vet() and connect, the
 * connect-time checks of the shared dispatcher and the exported lookup. Every connection made
 * here goes to 127.0.0.0/8; public answers are either refused first or mapped to loopback by the
 * pin-override test hook.
 */
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { createEgressGuard } from '../src/egress/guard.ts';
import type { ResolvedAddress } from '../src/egress/types.ts';
import { findProxyError } from '../src/errors.ts';
import {
  answer,
  mapResolver,
  policy,
  refusalOf,
  scriptedResolver,
  startLoopbackServer,
} from './fixtures/egress-support.ts';

const PUBLIC = answer('93.184.215.14');

describe('injected resolver answers', () => {
  const cases: readonly (readonly [string, readonly ResolvedAddress[], string])[] = [
    ['a private answer', [answer('10.0.0.5')], 'address_forbidden'],
    ['one public and one private answer', [PUBLIC, answer('192.168.0.7')], 'address_forbidden'],
    [
      'a private answer after a public one (IPv6)',
      [answer('2606:4700::1'), answer('fd00::7')],
      'address_forbidden',
    ],
    ['an IPv4-mapped loopback answer', [answer('::ffff:127.0.0.1')], 'address_forbidden'],
    ['a metadata answer', [answer('169.254.169.254')], 'address_forbidden'],
    ['a scoped link-local answer', [answer('fe80::1%eth0')], 'address_forbidden'],
    ['a non-canonical answer', [answer('0x7f.0.0.1')], 'address_forbidden'],
    ['no answers at all', [], 'dns_failed'],
  ];
  for (const [label, answers, reason] of cases) {
    it(`refuses ${label} (${reason})`, async () => {
      const guard = createEgressGuard(policy(), { resolver: async () => answers });
      assert.equal(await refusalOf(guard.vet('https://svc.test/mcp')), reason);
      await guard.close();
    });
  }

  it('accepts a name whose every answer is public', async () => {
    const resolver = mapResolver(new Map([['svc.test', [PUBLIC, answer('2606:4700::1')]]]));
    const guard = createEgressGuard(policy(), { resolver });
    assert.equal((await guard.vet('https://svc.test/mcp')).href, 'https://svc.test/mcp');
    assert.deepEqual(resolver.calls, ['svc.test']);
    await guard.close();
  });

  it('turns a resolver failure into dns_failed and keeps the cause for the log', async () => {
    const guard = createEgressGuard(policy(), { resolver: mapResolver(new Map()) });
    const error = await guard.vet('https://missing.test/').catch((caught: unknown) => caught);
    const proxyError = findProxyError(error);
    assert.ok(proxyError);
    assert.equal(proxyError.data.reason, 'dns_failed');
    assert.match(String((proxyError.cause as Error).message), /ENOTFOUND/);
    assert.doesNotMatch(proxyError.message, /ENOTFOUND/, 'resolver details stay out of the reply');
    await guard.close();
  });

  it('gives up on a resolver that never answers', async () => {
    const guard = createEgressGuard(policy(), {
      resolver: () => new Promise(() => {}),
      resolveTimeoutMs: 30,
    });
    const started = performance.now();
    assert.equal(await refusalOf(guard.vet('https://slow.test/')), 'dns_failed');
    assert.ok(performance.now() - started < 2_000);
    await guard.close();
  });

  it('never asks the resolver about IP literals or loopback names', async () => {
    const resolver = mapResolver(new Map());
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true }), { resolver });
    await guard.vet('http://8.8.8.8/');
    await guard.vet('http://[2606:4700::1]/');
    await guard.vet('http://localhost:3000/');
    await guard.vet('http://app.localhost/');
    assert.deepEqual(resolver.calls, []);
    await guard.close();
  });
});

describe('DNS rebinding between vet() and connect', () => {
  it('refuses the rebound loopback answer at connect time; the loopback server sees nothing', async () => {
    const server = await startLoopbackServer('victim');
    const resolver = scriptedResolver([PUBLIC], [answer('127.0.0.1')]);
    const guard = createEgressGuard(policy(), { resolver });
    try {
      const url = await guard.vet(`http://rebind.test:${server.port}/secret`);
      assert.equal(resolver.calls.length, 1, 'vet() resolved once and saw the public answer');

      const error = await request(url, { dispatcher: guard.dispatcher }).catch((caught: unknown) => caught);
      const proxyError = findProxyError(error);
      assert.ok(proxyError, `expected a ProxyError, got ${String(error)}`);
      assert.equal(proxyError.code, 'target_forbidden');
      assert.equal(proxyError.data.reason, 'address_forbidden');
      assert.equal(resolver.calls.length, 2, 'the connect-time lookup resolved again');
      assert.equal(server.connections(), 0);
      assert.deepEqual(server.seen, []);
    } finally {
      await guard.close();
      await server.close();
    }
  });

  it('connects to exactly the answer the connect-time check vetted (pin override maps it to loopback)', async () => {
    // `vetted` stands in for the public host; `decoy` is what a rebinding resolver answers next.
    const vetted = await startLoopbackServer('vetted', '127.0.0.1');
    const decoy = await startLoopbackServer('decoy', '127.0.0.2', vetted.port);
    const resolver = scriptedResolver([PUBLIC], [PUBLIC], [answer('127.0.0.2')]);
    const overrideSaw: ResolvedAddress[][] = [];
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true }), {
      resolver,
      // One connection per origin, so the second request must queue for the pooled socket.
      agent: { connections: 1 },
      pinOverride: (_hostname, answers) => {
        overrideSaw.push([...answers]);
        return answers.map((a) => (a.address === PUBLIC.address ? answer('127.0.0.1') : a));
      },
    });
    try {
      const url = await guard.vet(`http://rebind.test:${vetted.port}/mcp`);
      const first = await request(url, { dispatcher: guard.dispatcher });
      assert.equal(await first.body.text(), 'vetted');
      // A second request reuses the pooled keep-alive connection: no new lookup, same server.
      const second = await request(url, { dispatcher: guard.dispatcher });
      assert.equal(await second.body.text(), 'vetted');

      assert.equal(resolver.calls.length, 2, 'one resolution for vet(), one for the single new connection');
      assert.deepEqual(overrideSaw, [[PUBLIC]], 'the socket got the answer the lookup had just checked');
      assert.equal(vetted.connections(), 1);
      assert.equal(vetted.seen.length, 2);
      assert.equal(
        vetted.seen[0]?.headers.host,
        `rebind.test:${vetted.port}`,
        'the Host header keeps the name',
      );
      assert.deepEqual(decoy.seen, []);
    } finally {
      await guard.close();
      await vetted.close();
      await decoy.close();
    }
  });

  it('checks what the pin override returns too (metadata stays unreachable)', async () => {
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true }), {
      resolver: async () => [PUBLIC],
      pinOverride: () => [answer('169.254.169.254')],
    });
    const reason = await refusalOf(request('http://svc.test:9/', { dispatcher: guard.dispatcher }));
    assert.equal(reason, 'address_forbidden');
    await guard.close();
  });

  it('refuses the pin override unless private networks are allowed', () => {
    assert.throws(() => createEgressGuard(policy(), { pinOverride: (_h, answers) => answers }), TypeError);
  });
});

describe('connect-time checks of the shared dispatcher', () => {
  it('refuses an IP literal that skipped vet(); the server sees nothing', async () => {
    const server = await startLoopbackServer('victim');
    const guard = createEgressGuard(policy(), { resolver: mapResolver(new Map()) });
    try {
      const reason = await refusalOf(
        request(`http://127.0.0.1:${server.port}/`, { dispatcher: guard.dispatcher }),
      );
      assert.equal(reason, 'address_forbidden');
      assert.equal(server.connections(), 0);
    } finally {
      await guard.close();
      await server.close();
    }
  });

  it('enforces allowedPorts at connect time', async () => {
    const server = await startLoopbackServer('victim');
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true, allowedPorts: [443] }));
    try {
      const reason = await refusalOf(
        request(`http://127.0.0.1:${server.port}/`, { dispatcher: guard.dispatcher }),
      );
      assert.equal(reason, 'port_not_allowed');
      assert.equal(server.connections(), 0);
    } finally {
      await guard.close();
      await server.close();
    }
  });

  it('reaches a loopback literal when private networks are allowed, and does not follow redirects', async () => {
    const server = await startLoopbackServer('here', '127.0.0.1', 0, (url) =>
      url === '/start' ? { status: 302, headers: { location: '/elsewhere' } } : { status: 200 },
    );
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true }));
    try {
      const response = await request(`http://127.0.0.1:${server.port}/start`, {
        dispatcher: guard.dispatcher,
      });
      await response.body.text();
      assert.equal(response.statusCode, 302);
      assert.deepEqual(
        server.seen.map((s) => s.url),
        ['/start'],
      );
    } finally {
      await guard.close();
      await server.close();
    }
  });
});

describe('guard.lookup (for ws and other connectors)', () => {
  const zone = new Map([
    ['svc.test', [answer('127.0.0.1'), answer('::1')]],
    ['bad.test', [answer('169.254.169.254')]],
  ]);

  function lookupOnce(
    hostname: string,
    options: object,
  ): Promise<{ err: Error | null; address: string | LookupAddress[]; family?: number | undefined }> {
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true }), { resolver: mapResolver(zone) });
    return new Promise((resolve) => {
      guard.lookup(hostname, options, (err, address, family) => {
        void guard.close();
        resolve({ err, address, family });
      });
    });
  }

  it('answers the single-address shape', async () => {
    const result = await lookupOnce('svc.test', {});
    assert.equal(result.err, null);
    assert.equal(result.address, '127.0.0.1');
    assert.equal(result.family, 4);
  });

  it('answers the all: true shape with every vetted address', async () => {
    const result = await lookupOnce('svc.test', { all: true });
    assert.deepEqual(result.address, [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ]);
  });

  it('honours a requested family', async () => {
    const result = await lookupOnce('svc.test', { family: 6 });
    assert.equal(result.address, '::1');
    assert.equal(result.family, 6);
  });

  it('hands back a recognisable refusal', async () => {
    const result = await lookupOnce('bad.test', { all: true });
    assert.equal(findProxyError(result.err)?.data.reason, 'address_forbidden');
  });

  it('works as net.connect’s lookup', async () => {
    const server = await startLoopbackServer('raw');
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true }), { resolver: mapResolver(zone) });
    try {
      const remote = await new Promise<string | undefined>((resolve, reject) => {
        const socket = connect({
          host: 'svc.test',
          port: server.port,
          lookup: guard.lookup,
          autoSelectFamily: true,
        });
        socket.once('connect', () => {
          resolve(socket.remoteAddress);
          socket.destroy();
        });
        socket.once('error', reject);
      });
      assert.equal(remote, '127.0.0.1');
    } finally {
      await guard.close();
      await server.close();
    }
  });

  it('makes net.connect fail with the refusal for a forbidden name', async () => {
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true }), { resolver: mapResolver(zone) });
    const error = await new Promise<unknown>((resolve) => {
      const socket = connect({ host: 'bad.test', port: 9, lookup: guard.lookup });
      socket.once('error', resolve);
      socket.once('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
    });
    assert.equal(findProxyError(error)?.data.reason, 'address_forbidden');
    await guard.close();
  });
});
