/**
 * Table-driven verdicts of `guard.vet()`: every blocked range and its public neighbours, every
 * numeric spelling of an address, parser confusion, schemes, names. No connection is made and
 * names are answered by the fixture resolver only.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createEgressGuard } from '../src/egress/guard.ts';
import type { EgressGuard, EgressPolicy } from '../src/egress/types.ts';
import { FIXTURE_DNS, type PolicyName, VERDICT_CASES, type Verdict } from './fixtures/egress-cases.ts';
import { mapResolver, policy, refusalOf } from './fixtures/egress-support.ts';

const POLICIES: Readonly<Record<PolicyName, EgressPolicy>> = {
  default: policy(),
  private: policy({ allowPrivateNetworks: true }),
  ports: policy({ allowedPorts: [443, 8443] }),
};

async function verdictOf(guard: EgressGuard, url: string): Promise<Verdict> {
  const outcome = await guard.vet(url).then(
    (vetted) => ({ vetted }),
    (error: unknown) => ({ error }),
  );
  if ('error' in outcome) return refusalOf(Promise.reject(outcome.error));
  assert.ok(outcome.vetted instanceof URL);
  return 'allow';
}

it('has at least 250 verdict cases, at least 40 of them allowed', () => {
  assert.ok(VERDICT_CASES.length >= 250, `only ${VERDICT_CASES.length} cases`);
  assert.ok(VERDICT_CASES.filter((c) => c.expect === 'allow').length >= 40);
  const urls = VERDICT_CASES.map((c) => `${c.policy} ${c.url}`);
  assert.equal(new Set(urls).size, urls.length, 'duplicate cases');
});

for (const name of Object.keys(POLICIES) as PolicyName[]) {
  describe(`verdicts under the ${name} policy`, () => {
    const resolver = mapResolver(FIXTURE_DNS);
    const guard = createEgressGuard(POLICIES[name], { resolver });
    after(() => guard.close());

    for (const { url, expect } of VERDICT_CASES.filter((c) => c.policy === name)) {
      it(`${expect.padEnd(18)} ${JSON.stringify(url)}`, async () => {
        assert.equal(await verdictOf(guard, url), expect);
      });
    }

    it('asked the resolver only about names in the fixture zone (or known-missing ones)', () => {
      assert.ok(resolver.calls.length > 0);
      for (const query of resolver.calls) {
        const host = query.replace(/\.$/u, '');
        assert.ok(FIXTURE_DNS.has(host) || host.startsWith('nxdomain.'), `unexpected DNS query for ${host}`);
      }
    });
  });
}
