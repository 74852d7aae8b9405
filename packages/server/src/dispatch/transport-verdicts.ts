/**
 * @module dispatch/transport-verdicts
 * Remembers which transport each upstream URL speaks, so the spec's back-compat probe (POST
 * first, then legacy GET) runs once per upstream rather than once per request. Bounded in size
 * and time: an upstream that is upgraded is re-probed after the TTL.
 */
import type { HttpTransportKind } from '../upstream/transport.ts';

/** Limits of the verdict cache. */
export interface VerdictCacheOptions {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly now?: () => number;
}

/** A bounded, expiring map from upstream URL to transport kind. */
export class TransportVerdicts {
  readonly #entries = new Map<string, { kind: HttpTransportKind; expires: number }>();
  readonly #options: VerdictCacheOptions;
  readonly #now: () => number;

  constructor(options: VerdictCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The cached kind for `url`, if still fresh. */
  get(url: URL): HttpTransportKind | undefined {
    const entry = this.#entries.get(url.href);
    if (!entry) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(url.href);
      return undefined;
    }
    return entry.kind;
  }

  /** Records the kind `url` was found to speak. */
  set(url: URL, kind: HttpTransportKind): void {
    this.#entries.delete(url.href);
    if (this.#entries.size >= this.#options.maxEntries) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(url.href, { kind, expires: this.#now() + this.#options.ttlMs });
  }
}
