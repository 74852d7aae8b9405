/**
 * Issue 21: the status page's list of instances sharing a store. Each instance hears the others'
 * counts through the store's pub/sub; one not heard from within the TTL drops off; the list is
 * bounded (64 others) and a message of any other shape is ignored. Time is a manual clock.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { type InstanceCounts, InstanceRoster, MAX_INSTANCES } from '../src/observability/instance-roster.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { namespaced } from '../src/store/store.ts';
import { eventually } from './helpers/eventually.ts';
import { ManualClock } from './helpers/manual-clock.ts';

const TIMING = { beatMs: 2_000, ttlMs: 6_500 };

/** The ids `roster` lists, comma-joined. */
const ids = (roster: InstanceRoster) =>
  roster
    .others()
    .map((o) => o.id)
    .join();

function counts(id: string, requests = 0): InstanceCounts {
  return { id, startedAt: 1, requests, errors: 0, sessions: { byTransport: { sse: 1 }, webSockets: 2 } };
}

describe('InstanceRoster', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function world() {
    const clock = new ManualClock();
    const store = new MemoryStore(clock);
    cleanup.push(() => store.close());
    const errors: Error[] = [];
    const roster = async (id: string, requests = () => 0) => {
      const made = new InstanceRoster({
        store: namespaced(store, 'status:'),
        clock,
        counts: () => counts(id, requests()),
        onError: (error) => errors.push(error),
        timing: TIMING,
      });
      await made.start();
      cleanup.push(() => made.close());
      return made;
    };
    return { clock, store, roster, errors };
  }

  it('lists the others at once, with their counts as they change, and forgets one gone or silent', async () => {
    const { clock, store, roster } = await world();
    let bRequests = 0;
    const a = await roster('instance-a');
    const b = await roster('instance-b', () => bRequests);
    const c = await roster('instance-c');
    // Each heard the others without waiting a beat (a newcomer is answered at once).
    for (const [who, others] of [
      [a, ['instance-b', 'instance-c']],
      [b, ['instance-a', 'instance-c']],
      [c, ['instance-a', 'instance-b']],
    ] as const)
      await eventually(() => ids(who) === others.join(), { what: `${others}` });
    assert.deepEqual(a.others()[0]?.sessions, { byTransport: { sse: 1 }, webSockets: 2 });
    bRequests = 7;
    clock.advance(TIMING.beatMs);
    await eventually(() => a.others().find((o) => o.id === 'instance-b')?.requests === 7, {
      what: 'b’s count',
    });
    // c leaves: gone at once.
    await c.close();
    await eventually(() => a.others().every((o) => o.id !== 'instance-c'), { what: 'c gone' });
    // An instance killed never says goodbye: it stays listed for the TTL, not longer; b, which
    // keeps beating, stays.
    await store.publish('status:beats', JSON.stringify(counts('instance-killed')));
    await eventually(() => a.others().some((o) => o.id === 'instance-killed'), { what: 'killed heard' });
    clock.advance(TIMING.ttlMs - TIMING.beatMs);
    assert.ok(
      a.others().some((o) => o.id === 'instance-killed'),
      'gone before its TTL',
    );
    clock.advance(TIMING.beatMs + 1);
    await eventually(() => ids(a) === 'instance-b', { what: 'killed gone' });
  });

  it('keeps at most 64 others and ignores messages of another shape', async () => {
    const { clock, store, roster } = await world();
    const a = await roster('instance-a');
    const view = namespaced(store, 'status:');
    const junk = [
      'not json',
      '[]',
      JSON.stringify({ ...counts(''), id: 'x'.repeat(65) }),
      JSON.stringify({ ...counts('bad-number'), requests: -1 }),
      JSON.stringify({ ...counts('bad-kind'), sessions: { byTransport: { 'a b': 1 }, webSockets: 0 } }),
      JSON.stringify({
        ...counts('many-kinds'),
        sessions: {
          byTransport: Object.fromEntries([...Array(9)].map((_, i) => [`k${i}`, 1])),
          webSockets: 0,
        },
      }),
      JSON.stringify({ ...counts('huge'), pad: 'x'.repeat(5_000) }),
    ];
    for (const message of junk) await view.publish('beats', message);
    for (let i = 0; i < MAX_INSTANCES + 36; i++)
      await view.publish('beats', JSON.stringify(counts(`other-${i}`)));
    await eventually(() => a.others().length === MAX_INSTANCES, { what: '64 others' });
    assert.ok(
      a.others().every((o) => o.id.startsWith('other-')),
      'junk was listed',
    );
    // Past the TTL the silent ones are gone, and room is made for a newcomer.
    clock.advance(TIMING.ttlMs + 1);
    assert.equal(a.others().length, 0);
    await view.publish('beats', JSON.stringify(counts('newcomer')));
    await eventually(() => ids(a) === 'newcomer', { what: 'the newcomer' });
  });
});
