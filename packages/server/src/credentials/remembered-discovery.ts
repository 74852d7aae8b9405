/**
 * @module credentials/remembered-discovery
 * OAuth discovery that remembers, for a while, the servers that showed no sign of OAuth (review6
 * LINKS-3). With the broker on (the default once PUBLIC_URL is set) every upstream 401 asks
 * whether the server uses OAuth: for a server answering plain 401s (an API key missing or
 * expired) that is up to four metadata GETs per call, each call again. Remembered per resource
 * (origin and path: one origin may host servers with and without OAuth), a plain 401 costs the
 * upstream one discovery per {@link NO_OAUTH_TTL_MS}; a server that turns OAuth on is noticed
 * after at most that long. In memory per instance: a bounded cache, nothing a caller can grow.
 *
 * What is remembered is a finding about discovery's whole input: the resource and the metadata
 * URL its 401 named, if any (review8 CREDS-4: a bare 401 for the same URL, another transport's,
 * must not stand for a 401 that names `resource_metadata`). Only a plain "no metadata" is kept,
 * never metadata that did not answer (review8 CREDS-1: a 503, a rate limit, a timeout).
 */
import { TtlCache } from '../ttl-cache.ts';
import type { BearerChallenge } from './challenge.ts';
import { type Discovered, discover, isNoOAuth, noOAuthMetadata } from './discovery.ts';
import type { OAuthFetch } from './guarded-fetch.ts';
import { digest } from './hashed-secrets.ts';

/** How long "this server has no OAuth metadata" is believed. */
export const NO_OAUTH_TTL_MS = 2 * 60 * 1000;
/** Most servers remembered (the oldest written is forgotten first). */
const MAX_REMEMBERED = 10_000;

/** {@link discover} with a memory of the resources found without OAuth metadata. */
export class RememberedDiscovery {
  readonly #fetch: OAuthFetch;
  readonly #withoutOAuth: TtlCache<string, true>;

  constructor(fetch: OAuthFetch, now: () => number) {
    this.#fetch = fetch;
    this.#withoutOAuth = new TtlCache({ ttlMs: NO_OAUTH_TTL_MS, maxEntries: MAX_REMEMBERED, now });
  }

  /** Throws discovery's "no OAuth metadata" error when `serverUrl` was found so lately. */
  refuseIfRemembered(serverUrl: URL, challenge: BearerChallenge): void {
    if (this.#withoutOAuth.get(keyOf(serverUrl, challenge)) === true) throw noOAuthMetadata();
  }

  /** Runs discovery for `serverUrl`, remembering a finding of no OAuth metadata. */
  async discover(serverUrl: URL, challenge: BearerChallenge, signal?: AbortSignal): Promise<Discovered> {
    try {
      return await discover(this.#fetch, serverUrl, challenge, signal);
    } catch (error) {
      if (isNoOAuth(error)) this.#withoutOAuth.set(keyOf(serverUrl, challenge), true);
      throw error;
    }
  }
}

/**
 * The key of a discovery: the resource's origin and path (a query names no other server) and the
 * metadata URL its challenge named (discovery reads nothing else of the challenge), hashed: the
 * upstream chooses both, each up to some KiB, and the memory holds thousands.
 */
function keyOf(serverUrl: URL, challenge: BearerChallenge): string {
  const named = JSON.stringify([
    `${serverUrl.origin}${serverUrl.pathname}`,
    challenge.resourceMetadata ?? null,
  ]);
  return digest(named);
}
