/**
 * @module dispatch/vet-cache
 * Remembers which target URLs the egress guard accepted, so the same URL is not parsed and
 * judged again on every request (issue #10). Only acceptances are kept, each for a short time
 * and in bounded number. This is safe because `vet()` is the early, friendly check: the check
 * that binds runs again at connect time in the guard's dispatcher and lookup, against the
 * addresses actually connected to. The owner clears the cache when the egress policy changes.
 */

/** Size and lifetime of the cache. */
export interface VetCacheOptions {
  /** How long an acceptance is reused (a host name's DNS answers may change meanwhile). */
  readonly ttlMs: number;
  /** Most URLs kept; the oldest entry makes room for a new one. */
  readonly maxEntries: number;
  /** Clock in milliseconds (tests inject one). */
  readonly now?: () => number;
}

/** The defaults: a minute's reuse of up to 512 URLs. */
export const VET_CACHE_DEFAULTS: VetCacheOptions = { ttlMs: 60_000, maxEntries: 512 };

/** Accepted target URLs by the raw text a caller sent. */
export class VetCache {
  readonly #entries = new Map<string, { readonly href: string; readonly expires: number }>();
  readonly #options: VetCacheOptions;
  readonly #now: () => number;

  constructor(options: VetCacheOptions = VET_CACHE_DEFAULTS) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The vetted URL for `raw` when accepted recently, else undefined. A fresh URL object each
   * time, so no caller can change what another one connects to.
   */
  get(raw: string): URL | undefined {
    const entry = this.#entries.get(raw);
    if (entry === undefined) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(raw);
      return undefined;
    }
    return new URL(entry.href);
  }

  /** Records that the guard accepted `raw` as `url`. */
  set(raw: string, url: URL): void {
    const { ttlMs, maxEntries } = this.#options;
    if (maxEntries <= 0 || ttlMs <= 0) return;
    this.#entries.delete(raw);
    if (this.#entries.size >= maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(raw, { href: url.href, expires: this.#now() + ttlMs });
  }

  /** Forgets every entry (the egress policy changed). */
  clear(): void {
    this.#entries.clear();
  }

  /** Number of entries held (tests). */
  get size(): number {
    return this.#entries.size;
  }
}
