/**
 * @module identity/oidc/fetch-json
 * The one way the OIDC verifier reads its identity provider: a GET for a JSON document with a
 * deadline, no redirects and a byte cap. The issuer is the operator's choice, but what it sends
 * must still neither hang a verification nor grow memory without bound (docs/security.md).
 */
import { readCapped } from '../../read-capped.ts';

/** Fetches JSON documents for discovery and JWKS. Throws a plain Error saying what failed. */
export type JsonFetcher = (url: string) => Promise<unknown>;

/** Limits of {@link boundedJsonFetcher}. */
export interface JsonFetchLimits {
  /** Deadline of the whole exchange, body included. */
  readonly timeoutMs: number;
  /** Largest body read; a longer one is refused. */
  readonly maxBytes: number;
}

/** Defaults: a discovery document or a key set is a few KiB. */
export const JSON_FETCH_DEFAULTS: JsonFetchLimits = { timeoutMs: 5_000, maxBytes: 256 * 1024 };

/** A {@link JsonFetcher} over `fetch` with a deadline and a byte cap. */
export function boundedJsonFetcher(limits: JsonFetchLimits = JSON_FETCH_DEFAULTS): JsonFetcher {
  return async (url) => {
    const signal = AbortSignal.timeout(limits.timeoutMs);
    // A redirect would make the operator's issuer URL say less than it seems to: refused.
    const response = await fetch(url, { signal, redirect: 'error', headers: { accept: 'application/json' } });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`${url} answered HTTP ${response.status}`);
    }
    const body = await readCapped(response, limits.maxBytes, url);
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      throw new Error(`${url} did not send JSON`);
    }
  };
}
