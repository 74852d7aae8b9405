/**
 * @module store/memory-store
 * The {@link Store} in this process's memory: tests, and `STORE=memory` (nothing survives a
 * restart). Bounded: at {@link MEMORY_STORE_MAX_KEYS} keys, expired ones are swept; a live key is
 * never dropped to make room (it may be a revocation), so a write of a new key is refused then
 * ({@link StoreFullError}). Keys under a {@link KeyQuota}'s prefix (what the proxy does without
 * when refused: resumable answer logs) are also refused past the quota's own bound, so they never
 * take the room of what must be written.
 */
import { type Clock, SYSTEM_CLOCK } from '../clock.ts';
import { InProcessParts } from './in-process-parts.ts';
import { type Store, StoreFullError } from './store.ts';

/** Most keys the memory store holds. */
export const MEMORY_STORE_MAX_KEYS = 100_000;
/** A full store sweeps expired keys at most this often (a sweep walks every key). */
const SWEEP_AT_MOST_EVERY_MS = 1_000;

/** Most keys the keys under `prefix` may take. */
export interface KeyQuota {
  readonly prefix: string;
  readonly maxKeys: number;
}

/** A quota and how many keys it holds (expired ones not yet swept included). */
interface Counted extends KeyQuota {
  held: number;
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
    this.#quotas = quotas.map((quota) => ({ ...quota, held: 0 }));
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
    if (this.#entries.size >= this.#maxKeys || (quota !== undefined && quota.held >= quota.maxKeys))
      this.#makeRoom(quota);
    this.#entries.set(key, entry);
    if (quota !== undefined) quota.held += 1;
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
    for (const quota of this.#quotas) quota.held = 0;
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
    if (quota !== undefined) quota.held -= 1;
    return true;
  }

  #quotaOf(key: string): Counted | undefined {
    for (const quota of this.#quotas) if (key.startsWith(quota.prefix)) return quota;
    return undefined;
  }

  /**
   * Sweeps expired keys; throws {@link StoreFullError} when every key is still live, or every key
   * of the new key's `quota`.
   */
  #makeRoom(quota: Counted | undefined): void {
    const now = this.#now();
    if (now - this.#lastSweep >= SWEEP_AT_MOST_EVERY_MS) {
      this.#lastSweep = now;
      for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#remove(key);
    }
    if (this.#entries.size >= this.#maxKeys)
      throw new StoreFullError(`the memory store holds ${this.#maxKeys} live keys`);
    if (quota !== undefined && quota.held >= quota.maxKeys)
      throw new StoreFullError(`the memory store holds ${quota.maxKeys} live keys under ${quota.prefix}`);
  }
}
