/**
 * @module ttl-cache
 * The one bounded, expiring map of the proxy: what it learnt of an upstream (transport, era)
 * or accepted of a target URL is reused for a while, never for ever (an upstream may be
 * upgraded, a name's DNS answers change), and never without bound (callers choose the keys).
 * Full, it drops the entry written longest ago; an expired entry is dropped when read.
 */

/** Lifetime and size of a cache. */
export interface TtlCacheOptions {
  /** How long an entry is served after it was written; 0 or less keeps nothing. */
  readonly ttlMs: number;
  /** Most entries held; 0 or less keeps nothing. */
  readonly maxEntries: number;
  /** Clock in milliseconds (tests inject one); default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** A map whose entries expire `ttlMs` after they were written, at most `maxEntries` of them. */
export class TtlCache<K, V> {
  readonly #entries = new Map<K, { readonly value: V; readonly expires: number }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: TtlCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries;
    this.#now = options.now ?? Date.now;
  }

  /** The value for `key` while fresh, else undefined (and a stale entry is dropped). */
  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /**
   * Stores `value` for `key`, fresh for the TTL from now (or `ttlMs`, when shorter: what another
   * instance learnt earlier has only the rest of its lifetime left); makes room by dropping the
   * oldest write.
   */
  set(key: K, value: V, ttlMs = this.#ttlMs): void {
    const lifetime = Math.min(ttlMs, this.#ttlMs);
    if (this.#maxEntries <= 0 || lifetime <= 0) return;
    this.#entries.delete(key);
    // Maps iterate in insertion order, and a write re-inserts: the first key is the oldest write.
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as K);
    this.#entries.set(key, { value, expires: this.#now() + lifetime });
  }

  /** Forgets `key`'s entry; true when there was one. */
  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  /** Forgets every entry. */
  clear(): void {
    this.#entries.clear();
  }

  /** Number of entries held, stale ones included until they are read. */
  get size(): number {
    return this.#entries.size;
  }
}
