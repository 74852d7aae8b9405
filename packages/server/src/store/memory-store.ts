/**
 * @module store/memory-store
 * The {@link Store} in this process's memory: tests, and `STORE=memory` (nothing survives a
 * restart). Bounded: at {@link MEMORY_STORE_MAX_KEYS} keys, expired ones are swept; a live key is
 * never dropped to make room (it may be a revocation), so a write of a new key is refused then
 * ({@link StoreFullError}).
 */
import { type Clock, SYSTEM_CLOCK } from '../clock.ts';
import { InProcessParts } from './in-process-parts.ts';
import { type Store, StoreFullError } from './store.ts';

/** Most keys the memory store holds. */
export const MEMORY_STORE_MAX_KEYS = 100_000;
/** A full store sweeps expired keys at most this often (a sweep walks every key). */
const SWEEP_AT_MOST_EVERY_MS = 1_000;

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
  #lastSweep = -Infinity;

  /** @param maxKeys most keys held (tests pass a small one). */
  constructor(clock: Clock = SYSTEM_CLOCK, maxKeys = MEMORY_STORE_MAX_KEYS) {
    const now = () => clock.now();
    super(now);
    this.#now = now;
    this.#maxKeys = maxKeys;
  }

  async get(key: string): Promise<string | undefined> {
    return this.#live(key)?.value;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (!this.#entries.has(key) && this.#entries.size >= this.#maxKeys) this.#makeRoom();
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : this.#now() + ttlMs });
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    if (this.#live(key)) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const live = this.#live(key) !== undefined;
    this.#entries.delete(key);
    return live;
  }

  async deleteIf(key: string, value: string): Promise<boolean> {
    if (this.#live(key)?.value !== value) return false;
    return this.#entries.delete(key);
  }

  async replaceIf(key: string, expected: string, value: string, ttlMs?: number): Promise<boolean> {
    if (this.#live(key)?.value !== expected) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async close(): Promise<void> {
    this.#entries.clear();
    await this.closeParts();
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.#now()) return entry;
    this.#entries.delete(key);
    return undefined;
  }

  /** Sweeps expired keys; throws {@link StoreFullError} when every key is still live. */
  #makeRoom(): void {
    const now = this.#now();
    if (now - this.#lastSweep >= SWEEP_AT_MOST_EVERY_MS) {
      this.#lastSweep = now;
      for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
    }
    if (this.#entries.size >= this.#maxKeys)
      throw new StoreFullError(`the memory store holds ${this.#maxKeys} live keys`);
  }
}
