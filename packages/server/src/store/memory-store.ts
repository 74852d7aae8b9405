/**
 * @module store/memory-store
 * The {@link Store} in this process's memory: tests, and `STORE=memory` (nothing survives a
 * restart). Bounded: at {@link MEMORY_STORE_MAX_KEYS} keys, expired ones are swept; a live key is
 * never dropped to make room (it may be a revocation), so a write of a new key is refused then
 * ({@link StoreFullError}). Keys under a {@link KeyQuota}'s prefix (what the proxy does without
 * when refused: resumable answer logs) are also refused past the quota's own bound, so they never
 * take the room of what must be written, and past a group's share of it (a group: one principal's
 * keys), so one group never takes the room of the others.
 */
import { type Clock, SYSTEM_CLOCK } from '../clock.ts';
import { InProcessParts } from './in-process-parts.ts';
import { type Store, StoreFullError } from './store.ts';

/** Most keys the memory store holds. */
export const MEMORY_STORE_MAX_KEYS = 100_000;
/** A full store sweeps expired keys at most this often (a sweep walks every key). */
const SWEEP_AT_MOST_EVERY_MS = 1_000;

/** Most keys the keys under `prefix` may take, and (`maxPerGroup`) the keys of one group. */
export interface KeyQuota {
  readonly prefix: string;
  readonly maxKeys: number;
  /** Most keys of one group: the keys whose text after `prefix` starts with the same `<group>/`. */
  readonly maxPerGroup?: number | undefined;
}

/** A quota and how many keys it holds, in all and by group (expired ones not yet swept included). */
interface Counted extends KeyQuota {
  held: number;
  readonly groups: Map<string, number>;
}

interface Entry {
  readonly value: string;
  /** Epoch ms, or Infinity for no expiry. */
  readonly expiresAt: number;
}

/** Shared state for one process. */
export class MemoryStore extends InProcessParts implements Store {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #quotas: Counted[];
  #lastSweep = -Infinity;

  /**
   * @param maxKeys most keys held (tests pass a small one).
   * @param quotas bounds of their own for the keys under some prefixes (disjoint prefixes).
   */
  constructor(
    clock: Clock = SYSTEM_CLOCK,
    maxKeys = MEMORY_STORE_MAX_KEYS,
    quotas: readonly KeyQuota[] = [],
  ) {
    const now = () => clock.now();
    super(now);
    this.#now = now;
    this.#maxKeys = maxKeys;
    this.#quotas = quotas.map((quota) => ({ ...quota, held: 0, groups: new Map<string, number>() }));
  }

  async get(key: string): Promise<string | undefined> {
    return this.#live(key)?.value;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    const entry = { value, expiresAt: ttlMs === undefined ? Infinity : this.#now() + ttlMs };
    if (this.#entries.has(key)) {
      // Re-inserted: the oldest keys stay first (what a sweep meets first).
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      return;
    }
    const quota = this.#quotaOf(key);
    const group = quota && groupOf(quota, key);
    if (this.#entries.size >= this.#maxKeys || (quota !== undefined && isFull(quota, group)))
      this.#makeRoom(quota, group);
    this.#entries.set(key, entry);
    if (quota !== undefined) count(quota, group, 1);
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    if (this.#live(key)) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const live = this.#live(key) !== undefined;
    this.#remove(key);
    return live;
  }

  async deleteIf(key: string, value: string): Promise<boolean> {
    if (this.#live(key)?.value !== value) return false;
    return this.#remove(key);
  }

  async replaceIf(key: string, expected: string, value: string, ttlMs?: number): Promise<boolean> {
    if (this.#live(key)?.value !== expected) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async close(): Promise<void> {
    this.#entries.clear();
    for (const quota of this.#quotas) {
      quota.held = 0;
      quota.groups.clear();
    }
    await this.closeParts();
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.#now()) return entry;
    this.#remove(key);
    return undefined;
  }

  /** Removes `key`; true when it was held. */
  #remove(key: string): boolean {
    if (!this.#entries.delete(key)) return false;
    const quota = this.#quotaOf(key);
    if (quota !== undefined) count(quota, groupOf(quota, key), -1);
    return true;
  }

  #quotaOf(key: string): Counted | undefined {
    for (const quota of this.#quotas) if (key.startsWith(quota.prefix)) return quota;
    return undefined;
  }

  /**
   * Sweeps expired keys; throws {@link StoreFullError} when every key is still live, or every key
   * of the new key's `quota`, or of its `group` there.
   */
  #makeRoom(quota: Counted | undefined, group: string | undefined): void {
    const now = this.#now();
    if (now - this.#lastSweep >= SWEEP_AT_MOST_EVERY_MS) {
      this.#lastSweep = now;
      for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#remove(key);
    }
    if (this.#entries.size >= this.#maxKeys)
      throw new StoreFullError(`the memory store holds ${this.#maxKeys} live keys`);
    if (quota !== undefined && quota.held >= quota.maxKeys)
      throw new StoreFullError(`the memory store holds ${quota.maxKeys} live keys under ${quota.prefix}`);
    if (quota !== undefined && isFull(quota, group))
      throw new StoreFullError(
        `the memory store holds ${quota.maxPerGroup} live keys of one group under ${quota.prefix}`,
      );
  }
}

/** The group of `key` under `quota` (undefined: the quota has no groups, or the key names none). */
function groupOf(quota: KeyQuota, key: string): string | undefined {
  if (quota.maxPerGroup === undefined) return undefined;
  const end = key.indexOf('/', quota.prefix.length);
  return end < 0 ? undefined : key.slice(quota.prefix.length, end);
}

/** Whether `quota` (or its `group`) has no room for one more key. */
function isFull(quota: Counted, group: string | undefined): boolean {
  if (quota.held >= quota.maxKeys) return true;
  const maxPerGroup = quota.maxPerGroup;
  return group !== undefined && maxPerGroup !== undefined && (quota.groups.get(group) ?? 0) >= maxPerGroup;
}

/** Counts a key of `quota` (and its `group`) in (`by` 1) or out (-1). */
function count(quota: Counted, group: string | undefined, by: 1 | -1): void {
  quota.held += by;
  if (group === undefined) return;
  const held = (quota.groups.get(group) ?? 0) + by;
  if (held > 0) quota.groups.set(group, held);
  else quota.groups.delete(group);
}
