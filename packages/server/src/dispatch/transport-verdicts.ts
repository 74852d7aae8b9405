/**
 * @module dispatch/transport-verdicts
 * Remembers which transport each upstream URL speaks, so the spec's back-compat probe (POST
 * first, then legacy GET) runs once per upstream rather than once per request, and (issue 19)
 * once for every instance sharing the store. Bounded in size and time: an upstream that is
 * upgraded is re-probed after the TTL.
 */
import type { HttpTransportKind } from '../upstream/transport.ts';
import { type SharedVerdictOptions, SharedVerdicts } from './shared-verdicts.ts';

/** Limits of the verdict cache, and the store it is shared through. */
export type VerdictCacheOptions = Omit<SharedVerdictOptions<HttpTransportKind>, 'kind' | 'parse' | 'merge'>;

/** A bounded, expiring map from upstream URL to transport kind. */
export class TransportVerdicts {
  readonly #verdicts: SharedVerdicts<HttpTransportKind>;

  constructor(options: VerdictCacheOptions) {
    this.#verdicts = new SharedVerdicts({ ...options, kind: 'transport', parse: transportOf });
  }

  /** The cached kind for `url`, if still fresh (never waits on the store). */
  get(url: URL): HttpTransportKind | undefined {
    return this.#verdicts.get(url.href);
  }

  /** Whether {@link recall} could learn more of `url` than {@link get} knows. */
  mayRecall(url: URL): boolean {
    return this.#verdicts.mayRecall(url.href);
  }

  /** The kind for `url`, asking the shared store when this instance does not know. */
  recall(url: URL): Promise<HttpTransportKind | undefined> {
    return this.#verdicts.recall(url.href);
  }

  /** Records the kind `url` was found to speak (and shares it). */
  set(url: URL, kind: HttpTransportKind): void {
    this.#verdicts.set(url.href, kind);
  }

  /** Listens for what other instances learn. */
  listen(): Promise<void> {
    return this.#verdicts.listen();
  }

  close(): Promise<void> {
    return this.#verdicts.close();
  }
}

function transportOf(value: unknown): HttpTransportKind | undefined {
  return value === 'streamable-http' || value === 'sse' ? value : undefined;
}
