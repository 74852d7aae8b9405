/**
 * The target resolver reuses the egress guard's acceptance of a URL for a while (issue #10),
 * never its refusals, and forgets everything when the policy changes (SIGHUP reload).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TargetResolver } from '../src/dispatch/targets.ts';
import { createEgressGuard } from '../src/egress/guard.ts';
import type { EgressGuard } from '../src/egress/types.ts';
import { answer, mapResolver, policy } from './fixtures/egress-support.ts';

/** A real guard whose `vet` calls are counted. */
function countingGuard(guard: EgressGuard): { guard: EgressGuard; calls: string[] } {
  const calls: string[] = [];
  const counted: EgressGuard = {
    vet: (raw) => {
      calls.push(String(raw));
      return guard.vet(raw);
    },
    vetRedirect: (from, location, hop) => guard.vetRedirect(from, location, hop),
    get dispatcher() {
      return guard.dispatcher;
    },
    lookup: guard.lookup,
    describe: () => guard.describe(),
    close: () => guard.close(),
  };
  return { guard: counted, calls };
}

const URL_A = 'https://a.example.com/mcp';

describe('vetted URL cache', () => {
  it('vets a URL once within the TTL, hands out a fresh URL each time, and expires', async () => {
    const real = createEgressGuard(policy(), {
      resolver: mapResolver(new Map([['a.example.com', [answer('93.184.215.14')]]])),
    });
    const { guard, calls } = countingGuard(real);
    let now = 0;
    const targets = new TargetResolver({}, guard, { ttlMs: 1_000, maxEntries: 8, now: () => now });
    try {
      const first = await targets.resolve({ url: URL_A, transport: 'auto' });
      const second = await targets.resolve({ url: URL_A, transport: 'auto' });
      assert.equal(calls.length, 1);
      assert.ok('url' in first && 'url' in second);
      assert.equal(second.url.href, first.url.href);
      assert.notEqual(second.url, first.url, 'no URL object is shared between requests');
      now = 1_000;
      await targets.resolve({ url: URL_A, transport: 'auto' });
      assert.equal(calls.length, 2, 'an expired acceptance is vetted again');
    } finally {
      await real.close();
    }
  });

  it('never caches a refusal, and still checks the transport against the cached URL', async () => {
    const real = createEgressGuard(policy(), {
      resolver: mapResolver(new Map([['a.example.com', [answer('93.184.215.14')]]])),
    });
    const { guard, calls } = countingGuard(real);
    const targets = new TargetResolver({}, guard);
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(targets.resolve({ url: 'http://169.254.169.254/', transport: 'auto' }), {
          code: 'target_forbidden',
        });
      }
      assert.equal(calls.length, 2);
      await targets.resolve({ url: URL_A, transport: 'auto' });
      await assert.rejects(targets.resolve({ url: URL_A, transport: 'websocket' }), {
        code: 'invalid_target',
      });
    } finally {
      await real.close();
    }
  });

  it('forgets every acceptance when the policy changes', async () => {
    const real = createEgressGuard(policy(), {
      resolver: mapResolver(new Map([['a.example.com', [answer('93.184.215.14')]]])),
    });
    const { guard, calls } = countingGuard(real);
    const targets = new TargetResolver({}, guard);
    try {
      await targets.resolve({ url: URL_A, transport: 'auto' });
      targets.forgetVetted();
      await targets.resolve({ url: URL_A, transport: 'auto' });
      assert.equal(calls.length, 2);
    } finally {
      await real.close();
    }
  });

  it('keeps a bounded number of URLs', async () => {
    const real = createEgressGuard(policy({ allowPrivateNetworks: true }));
    const { guard, calls } = countingGuard(real);
    const targets = new TargetResolver({}, guard, { ttlMs: 60_000, maxEntries: 2 });
    try {
      for (const port of [1001, 1002, 1003, 1001]) {
        await targets.resolve({ url: `http://127.0.0.1:${port}/mcp`, transport: 'auto' });
      }
      assert.equal(calls.length, 4, 'the oldest entry made room for the third URL');
    } finally {
      await real.close();
    }
  });
});
