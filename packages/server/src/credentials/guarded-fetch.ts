/**
 * @module credentials/guarded-fetch
 * The two ways the OAuth broker makes HTTP calls, both with a deadline, no redirects and a byte
 * cap, the answer handed back as a plain `Response` so oauth4webapi can process it:
 * {@link guardedFetch} for what callers' servers name (authorization servers, protected-resource
 * metadata): through the egress guard (vetted name, pinned connection); {@link trustedFetch} for
 * the identity providers the operator configured (the proxy's own login, review6 LINKS-1): like
 * the OIDC verifier's key-set fetch, not subject to the upstream egress policy.
 */
import type { Dispatcher } from 'undici';
import type { EgressGuard } from '../egress/types.ts';
import { readCapped } from '../read-capped.ts';

/** Limits of {@link guardedFetch}. */
export interface GuardedFetchLimits {
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

/** Defaults: metadata, registration and token answers are a few KiB. */
export const GUARDED_FETCH_DEFAULTS: GuardedFetchLimits = { timeoutMs: 10_000, maxBytes: 256 * 1024 };

/** What the flow's requests carry (oauth4webapi's `customFetch` options fit it). */
export interface OAuthFetchInit {
  readonly method?: string | undefined;
  readonly headers?: Headers | Record<string, string> | undefined;
  readonly body?: unknown;
  readonly signal?: AbortSignal | undefined;
}

/** A fetch for the OAuth flow; oauth4webapi's `customFetch` has this shape. */
export type OAuthFetch = (url: string, init: OAuthFetchInit) => Promise<Response>;

/** Where one call goes: the URL to connect to and, when pinned, the dispatcher that connects. */
type Route = (url: string) => Promise<{ readonly url: URL; readonly dispatcher?: Dispatcher | undefined }>;

/** Builds the flow's fetch over `guard`; throws a plain Error naming the URL's origin on failure. */
export function guardedFetch(
  guard: EgressGuard,
  limits: GuardedFetchLimits = GUARDED_FETCH_DEFAULTS,
): OAuthFetch {
  return boundedFetch(async (url) => ({ url: await guard.vet(url), dispatcher: guard.dispatcher }), limits);
}

/**
 * A fetch for an operator-configured identity provider (a login issuer): the same deadline, cap
 * and refusal of redirects, without the upstream egress guard, which is the policy for what
 * callers may reach (an issuer on a private network or another port must not need it widened).
 */
export function trustedFetch(limits: GuardedFetchLimits = GUARDED_FETCH_DEFAULTS): OAuthFetch {
  return boundedFetch(async (url) => ({ url: new URL(url) }), limits);
}

function boundedFetch(route: Route, limits: GuardedFetchLimits): OAuthFetch {
  return async (url, init) => {
    const { url: target, dispatcher } = await route(url);
    const signal = init.signal
      ? AbortSignal.any([init.signal, AbortSignal.timeout(limits.timeoutMs)])
      : AbortSignal.timeout(limits.timeoutMs);
    // undici's index, loaded on the broker's first request: nothing else uses it (egress/undici-parts.ts).
    const { fetch: undiciFetch } = await import('undici');
    const response = await undiciFetch(target, {
      method: init.method ?? 'GET',
      headers: Object.fromEntries(new Headers(init.headers as ConstructorParameters<typeof Headers>[0])),
      body: (init.body as string | URLSearchParams | null | undefined) ?? null,
      // A redirect would let a metadata document send the flow somewhere the guard never saw.
      redirect: 'manual',
      signal,
      ...(dispatcher === undefined ? {} : { dispatcher }),
    });
    const read = await readCapped(response, limits.maxBytes, target.origin);
    const headers = new Headers();
    for (const [name, value] of response.headers) headers.append(name, value);
    const body = [101, 103, 204, 205, 304].includes(response.status) ? null : read;
    // A global Response: oauth4webapi checks `instanceof Response`.
    return new Response(body, { status: response.status, headers });
  };
}
