import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TtlCache } from '../src/ttl-cache.ts';
import { ManualClock } from './helpers/manual-clock.ts';

describe('TtlCache', () => {
  it('serves an entry until its TTL has passed, then forgets it', () => {
    const clock = new ManualClock(0);
    const cache = new TtlCache<string, number>({ ttlMs: 1_000, maxEntries: 4, now: () => clock.now() });
    cache.set('a', 1);
    clock.advance(999);
    assert.equal(cache.get('a'), 1);
    clock.advance(1);
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0, 'the stale entry is dropped when read');
  });

  it('drops the entry written longest ago when full; a rewrite counts as new', () => {
    const clock = new ManualClock(0);
    const cache = new TtlCache<string, number>({ ttlMs: 60_000, maxEntries: 2, now: () => clock.now() });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 3);
    cache.set('c', 4);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('a'), 3);
    assert.equal(cache.get('c'), 4);
    assert.equal(cache.size, 2);
  });

  it('add refuses a key while full of fresh entries, and makes room only from expired ones', () => {
    const clock = new ManualClock(0);
    const cache = new TtlCache<string, number>({ ttlMs: 1_000, maxEntries: 2, now: () => clock.now() });
    assert.equal(cache.add('a', 1), true);
    clock.advance(500);
    assert.equal(cache.add('b', 2), true);
    assert.equal(cache.add('c', 3), false, 'full of fresh entries');
    assert.equal(cache.get('a'), 1, 'nothing fresh was dropped');
    assert.equal(cache.get('c'), undefined);
    clock.advance(500);
    // 'a' has expired: it makes room; 'b' is still fresh.
    assert.equal(cache.add('c', 3), true);
    assert.equal(cache.get('b'), 2);
    assert.equal(cache.get('c'), 3);
    assert.equal(cache.size, 2);
  });

  it('keeps nothing with a zero TTL or size', () => {
    for (const options of [
      { ttlMs: 0, maxEntries: 8 },
      { ttlMs: 1_000, maxEntries: 0 },
    ]) {
      const cache = new TtlCache<string, number>(options);
      cache.set('a', 1);
      assert.equal(cache.get('a'), undefined);
    }
  });
});
