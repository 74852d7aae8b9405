/**
 * @module dispatch/vet-cache
 * Remembers which target URLs the egress guard accepted, so the same URL is not parsed and
 * judged again on every request (issue #10). Only acceptances are kept, each for a short time
 * and in bounded number. This is safe because `vet()` is the early, friendly check: the check
 * that binds runs again at connect time in the guard's dispatcher and lookup, against the
 * addresses actually connected to. The owner clears the cache when the egress policy changes.
 */
import { TtlCache, type TtlCacheOptions } from '../ttl-cache.ts';

/**
 * Size and lifetime of the cache: `ttlMs` is how long an acceptance is reused (a host name's DNS
 * answers may change meanwhile).
 */
export type VetCacheOptions = TtlCacheOptions;

/** The defaults: a minute's reuse of up to 512 URLs. */
export const VET_CACHE_DEFAULTS: VetCacheOptions = { ttlMs: 60_000, maxEntries: 512 };

/** Accepted target URLs by the raw text a caller sent. */
export class VetCache {
  readonly #cache: TtlCache<string, string>;

  constructor(options: VetCacheOptions = VET_CACHE_DEFAULTS) {
    this.#cache = new TtlCache(options);
  }

  /**
   * The vetted URL for `raw` when accepted recently, else undefined. A fresh URL object each
   * time, so no caller can change what another one connects to.
   */
  get(raw: string): URL | undefined {
    const href = this.#cache.get(raw);
    return href === undefined ? undefined : new URL(href);
  }

  /** Records that the guard accepted `raw` as `url`. */
  set(raw: string, url: URL): void {
    this.#cache.set(raw, url.href);
  }

  /** Forgets every entry (the egress policy changed). */
  clear(): void {
    this.#cache.clear();
  }

  /** Number of entries held (tests). */
  get size(): number {
    return this.#cache.size;
  }
}
