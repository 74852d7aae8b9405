/**
 * Issue #14.11 and #14.16: URLs whose authority parsers read differently are refused before any
 * parsing or DNS, on every way in (vet, redirects, POST /proxy); and a refusal for a private
 * target tells the operator which settings open it, without naming the resolved address.
 * Nothing here connects anywhere: the resolver fails the test if it is ever asked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEgressGuard } from '../src/egress/guard.ts';
import type { Resolver } from '../src/egress/types.ts';
import { answer, mapResolver, policy, refusalOf } from './fixtures/egress-support.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

/** A resolver that must never be called: ambiguous URLs are refused before any lookup. */
function forbiddenResolver(): Resolver & { readonly calls: string[] } {
  const calls: string[] = [];
  const resolver: Resolver = async (hostname) => {
    calls.push(hostname);
    throw new Error(`unexpected DNS lookup of ${hostname}`);
  };
  return Object.assign(resolver, { calls });
}

/** Non-loopback names only: were any of them looked up or connected to, the test would notice. */
const AMBIGUOUS: readonly (readonly [url: string, named: RegExp])[] = [
  ['http://evil.example\\@10.0.0.1/mcp', /backslash/],
  ['https://evil.example\\@mcp.example.com/mcp', /backslash/],
  ['https:\\\\mcp.example.com/mcp', /backslash/],
  ['https:/mcp.example.com/mcp', /1 slashes/],
  ['https://a.example@b.example@mcp.example.com/', /more than one "@"/],
  ['https://@mcp.example.com/', /no user name/],
  ['https://mcp.example.com%2f@evil.example/', /percent-encoding/],
  ['https://evil.example\uff20mcp.example.com/', /IDNA/],
  ['https://evil\u3002example/', /IDNA/],
  ['https://mcp.exa\tmple.com/', /whitespace or control/],
  ['https://mcp.example.com\u0000.evil.example/', /whitespace or control/],
  ['https://mcp[.example.com/', /misplaced/],
  // Review F2: code points IDNA drops or maps to others, so the host read is not the host written.
  ['https://mcp.exa\u00admple.com/', /IDNA drops or rewrites/],
  ['https://mcp.ex\u200bample.com/', /IDNA drops or rewrites/],
  ['https://mcp.exa\u034fmple.com/', /IDNA drops or rewrites/],
  ['https://mcp.exa\ufe0fmple.com/', /IDNA drops or rewrites/],
  ['https://\uff45\uff56\uff49\uff4c.example/', /IDNA drops or rewrites/],
  ['https://\u24d4xample.com/', /IDNA drops or rewrites/],
  ['https://evil\u2488example/', /IDNA drops or rewrites/],
  ['https://bu\u0308cher.example/', /IDNA drops or rewrites/],
];

describe('ambiguous authorities through the guard', () => {
  for (const allowPrivateNetworks of [false, true]) {
    it(`are refused as ambiguous_url without a lookup (private networks ${allowPrivateNetworks})`, async () => {
      const resolver = forbiddenResolver();
      const guard = createEgressGuard(policy({ allowPrivateNetworks, followRedirects: 1 }), { resolver });
      try {
        for (const [url, named] of AMBIGUOUS) {
          assert.equal(await refusalOf(guard.vet(url)), 'ambiguous_url', url);
          await assert.rejects(guard.vet(url), named, url);
          const from = new URL('https://mcp.example.com/mcp');
          assert.equal(await refusalOf(guard.vetRedirect(from, url, 1)), 'ambiguous_url', url);
        }
        assert.deepEqual(resolver.calls, []);
      } finally {
        await guard.close();
      }
    });
  }

  it('still accepts plainly written URLs, IDNs and bracketed IPv6 with a port', async () => {
    const resolver = mapResolver(
      new Map([
        ['mcp.example.com', [answer('93.184.215.14')]],
        ['xn--bcher-kva.example', [answer('93.184.215.14')]],
      ]),
    );
    const guard = createEgressGuard(policy(), { resolver });
    try {
      for (const url of [
        'https://mcp.example.com/mcp?next=http://a\\@b/#x',
        'https://mcp.example.com:8443/a\\b',
        'https://bücher.example/mcp',
        'https://BÜCHER.example:443/mcp',
        'https://xn--bcher-kva.example/mcp',
        'https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443/mcp',
      ]) {
        assert.ok((await guard.vet(url)) instanceof URL, url);
      }
    } finally {
      await guard.close();
    }
  });
});

describe('ambiguous authorities through POST /proxy', () => {
  let proxy: RunningProxy;
  const resolver = forbiddenResolver();
  before(async () => {
    proxy = await startProxy({ ALLOW_PRIVATE_NETWORKS: 'true' }, { resolver });
  });
  after(() => proxy.close());

  it('answers 403 target_forbidden with reason ambiguous_url, naming the ambiguity', async () => {
    for (const [url, named] of AMBIGUOUS) {
      const reply = await postProxy(proxy, {
        mcp_server_url: url,
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      });
      assert.equal(reply.status, 403, url);
      assert.equal(reply.body.error.data.code, 'target_forbidden', url);
      assert.equal(reply.body.error.data.reason, 'ambiguous_url', url);
      assert.match(reply.body.error.message, named, url);
    }
    assert.deepEqual(resolver.calls, []);
  });
});

describe('refusals of private targets say how to allow them (#14.16)', () => {
  it('names ALLOW_PRIVATE_NETWORKS and EGRESS_ALLOWED_HOSTS, never the resolved address', async () => {
    const guard = createEgressGuard(policy(), {
      resolver: mapResolver(new Map([['intranet.example', [answer('10.20.30.40')]]])),
    });
    try {
      for (const url of ['http://127.0.0.1:9/mcp', 'http://intranet.example/mcp', 'http://[::1]/mcp']) {
        const error: Error = await guard.vet(url).then(
          () => assert.fail(`${url} was allowed`),
          (caught: Error) => caught,
        );
        assert.equal(await refusalOf(Promise.reject(error)), 'address_forbidden');
        assert.match(error.message, /ALLOW_PRIVATE_NETWORKS=true/);
        assert.match(error.message, /EGRESS_ALLOWED_HOSTS/);
        assert.doesNotMatch(error.message, /10\.20\.30\.40/);
      }
      // Metadata is never reachable: no setting is suggested for it.
      const metadata: Error = await guard.vet('http://169.254.169.254/').then(
        () => assert.fail('metadata was allowed'),
        (caught: Error) => caught,
      );
      assert.doesNotMatch(metadata.message, /ALLOW_PRIVATE_NETWORKS/);
      assert.match(metadata.message, /never connects/);
    } finally {
      await guard.close();
    }
  });

  it('says so through POST /proxy too', async () => {
    const proxy = await startProxy({ ALLOW_PRIVATE_NETWORKS: 'false' });
    try {
      const reply = await postProxy(proxy, {
        mcp_server_url: 'http://127.0.0.1:9/mcp',
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      });
      assert.equal(reply.status, 403);
      assert.equal(reply.body.error.data.reason, 'address_forbidden');
      assert.match(reply.body.error.message, /ALLOW_PRIVATE_NETWORKS=true.*EGRESS_ALLOWED_HOSTS/);
    } finally {
      await proxy.close();
    }
  });
});
