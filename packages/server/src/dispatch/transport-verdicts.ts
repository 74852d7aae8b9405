/**
 * @module dispatch/transport-verdicts
 * Remembers which transport each upstream URL speaks, so the spec's back-compat probe (POST
 * first, then legacy GET) runs once per upstream rather than once per request. Bounded in size
 * and time: an upstream that is upgraded is re-probed after the TTL.
 */
import { TtlCache, type TtlCacheOptions } from '../ttl-cache.ts';
import type { HttpTransportKind } from '../upstream/transport.ts';

/** Limits of the verdict cache. */
export type VerdictCacheOptions = TtlCacheOptions;

/** A bounded, expiring map from upstream URL to transport kind. */
export class TransportVerdicts {
  readonly #cache: TtlCache<string, HttpTransportKind>;

  constructor(options: VerdictCacheOptions) {
    this.#cache = new TtlCache(options);
  }

  /** The cached kind for `url`, if still fresh. */
  get(url: URL): HttpTransportKind | undefined {
    return this.#cache.get(url.href);
  }

  /** Records the kind `url` was found to speak. */
  set(url: URL, kind: HttpTransportKind): void {
    this.#cache.set(url.href, kind);
  }
}
