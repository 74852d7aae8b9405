/**
 * @module identity/hook
 * The Fastify hook that guards protected routes: the credential comes from `X-Proxy-Token`, then
 * (when allowed) `?proxy_token=`, then `Authorization: Bearer`, and the {@link Authenticator}
 * turns it into the request's principal.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { findProxyError, ProxyError } from '../errors.ts';
import { rateSubject } from '../limits/client-address.ts';
import { closeAfterRefusal } from '../limits/connection-deadlines.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { type Authenticator, CREDENTIAL_REFUSALS, type CredentialRecheck } from './authenticator.ts';
import type { Principal } from './principal.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on protected routes. */
    identity: Principal | undefined;
    /**
     * True when the proxy credential came in `Authorization: Bearer`: that header is then the
     * caller's credential for the proxy and is never read as an upstream token (MCP forbids
     * passing an inbound token through).
     */
    credentialInAuthorization: boolean;
    /**
     * For a minted or bearer token: verifies it again (after a reload), so what the request
     * holds open ends when its signing key is dropped.
     */
    recheckCredential: CredentialRecheck | undefined;
  }
}

/** Header that carries the proxy token. */
export const PROXY_TOKEN_HEADER = 'x-proxy-token';

/** Where else a proxy token may come from, for clients that cannot set headers. */
export interface TokenSources {
  /** Accept `?proxy_token=` (the URL then holds a secret: off unless the operator opts in). */
  readonly query: boolean;
}

/** The credential of an `Authorization: Bearer` header, if it has one. */
export function bearerOf(authorization: string | undefined): string | undefined {
  const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

/** Turns a refusal into the one the caller gets (e.g. with a `WWW-Authenticate` challenge). */
export type RefusalMapper = (request: FastifyRequest, error: unknown) => unknown;

/**
 * Builds an `onRequest` hook that rejects requests without a valid credential (401), then counts
 * the request against the per-address and per-principal limits. Callback-style: with a static
 * token or one verified before, and counters in this process, it goes on at once, without a
 * promise or a microtask; only a token not seen yet or a remote store (Redis) waits.
 * @param resourceOf the URL (under `PUBLIC_URL`) of the endpoint a request calls: a token
 *   accepted for naming one of the proxy's resources in its audience is good only there.
 * @param mapRefusal turns a refusal into the one the caller gets (the /mcp scope's challenge).
 */
export function proxyTokenHook(
  authenticator: Authenticator,
  limiter: RateLimiter,
  sources: TokenSources = { query: false },
  resourceOf: (request: FastifyRequest) => string | undefined = () => undefined,
  mapRefusal?: RefusalMapper,
) {
  return function requireProxyToken(
    request: FastifyRequest,
    reply: FastifyReply,
    done: HookHandlerDoneFunction,
  ): void {
    let pending: Promise<void> | undefined;
    try {
      pending = admit(request);
    } catch (error) {
      refuse(request, reply, done, error);
      return;
    }
    if (pending === undefined) done();
    else
      pending.then(
        () => done(),
        (error: unknown) => refuse(request, reply, done, error),
      );
  };

  /**
   * Every refusal of the hook, whichever step threw (a counter included): a refused caller gets
   * no keep-alive connection to come back on (issue 14 #4).
   */
  function refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    done: HookHandlerDoneFunction,
    error: unknown,
  ): void {
    closeAfterRefusal(request, reply);
    done((mapRefusal === undefined ? error : mapRefusal(request, error)) as Error);
  }

  /** Authenticates, then counts: at once when every step can be, else a promise. */
  function admit(request: FastifyRequest): Promise<void> | undefined {
    const ip = rateSubject(request.ip);
    let known: Principal | undefined;
    let resource: string | undefined;
    try {
      // Brute-force protection: an address that failed too often is refused before any check.
      const gate = limiter.assertUnderNow('authFailuresPerIp', ip);
      if (gate !== undefined)
        return gate.then(() => authenticate(request, ip)).then((principal) => count(request, principal, ip));
      const presented = credentialOf(request);
      resource = resourceOf(request);
      known = authenticator.authenticateNow(presented, request.headers.origin, resource);
      if (known === undefined)
        return verify(request, presented, resource, ip).then((principal) => count(request, principal, ip));
      if (known.credentialId !== undefined)
        request.recheckCredential = authenticator.recheckOf(presented, request.headers.origin, resource);
    } catch (error) {
      // Counting may refuse too (the failures' own limit reached), at once or later.
      const counted = countFailure(error, ip);
      if (counted === undefined) throw error;
      return counted.then(() => {
        throw error;
      });
    }
    return count(request, known, ip);
  }

  /** Counts an admitted request: per address, then per principal. */
  function count(request: FastifyRequest, principal: Principal, ip: string): Promise<void> | undefined {
    request.identity = principal;
    const perIp = limiter.consumeNow('requestsPerIp', ip);
    // The full principal key: the 12-digit `id` is for logs, and two principals could share it.
    const key = principal.principalKey;
    if (perIp !== undefined)
      return perIp.then(() => limiter.consume('requestsPerToken', key, principal.grants.rateClass));
    return limiter.consumeNow('requestsPerToken', key, principal.grants.rateClass);
  }

  /** The slow path of authentication: a credential that needs verifying (or a remote store). */
  async function authenticate(request: FastifyRequest, ip: string): Promise<Principal> {
    let presented: string;
    try {
      presented = credentialOf(request);
    } catch (error) {
      await countFailure(error, ip);
      throw error;
    }
    return verify(request, presented, resourceOf(request), ip);
  }

  async function verify(
    request: FastifyRequest,
    presented: string,
    resource: string | undefined,
    ip: string,
  ): Promise<Principal> {
    // Taken first: a reload while the verification awaits leaves it stale, so what the request
    // holds is verified again under the new keys (the reload's recheck did not see it yet).
    const recheck = authenticator.recheckOf(presented, request.headers.origin, resource);
    try {
      const principal = await authenticator.authenticate(presented, request.headers.origin, resource);
      if (principal.credentialId !== undefined) request.recheckCredential = recheck;
      return principal;
    } catch (error) {
      await countFailure(error, ip);
      throw error;
    }
  }

  /** Counts a refused credential against the address (brute-force protection). */
  function countFailure(error: unknown, ip: string): Promise<void> | undefined {
    const code = findProxyError(error)?.code;
    if (code === undefined || !CREDENTIAL_REFUSALS.has(code)) return undefined;
    return limiter.consumeNow('authFailuresPerIp', ip);
  }

  /** The presented credential; throws `unauthorized` when there is none. */
  function credentialOf(request: FastifyRequest): string {
    const header = request.headers[PROXY_TOKEN_HEADER];
    let presented = typeof header === 'string' && header !== '' ? header : undefined;
    if (presented === undefined && sources.query) {
      const value = (request.query as Record<string, unknown> | undefined)?.proxy_token;
      if (typeof value === 'string' && value !== '') presented = value;
    }
    if (presented === undefined) {
      presented = bearerOf(request.headers.authorization);
      request.credentialInAuthorization = presented !== undefined;
    }
    if (presented === undefined)
      throw new ProxyError(
        'unauthorized',
        'Missing proxy token: send it in the X-Proxy-Token header or as Authorization: Bearer.',
      );
    return presented;
  }
}
