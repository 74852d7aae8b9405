/**
 * @module identity/hook
 * The Fastify hook that guards protected routes: the credential comes from `X-Proxy-Token`, then
 * (when allowed) `?proxy_token=`, then `Authorization: Bearer`, and the {@link Authenticator}
 * turns it into the request's principal.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
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

/**
 * Builds an `onRequest` hook that rejects requests without a valid credential (401).
 * @param resourceOf the URL (under `PUBLIC_URL`) of the endpoint a request calls: a token
 *   accepted for naming one of the proxy's resources in its audience is good only there.
 */
export function proxyTokenHook(
  authenticator: Authenticator,
  limiter: RateLimiter,
  sources: TokenSources = { query: false },
  resourceOf: (request: FastifyRequest) => string | undefined = () => undefined,
) {
  return async function requireProxyToken(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    try {
      request.identity = await authenticate(request);
    } catch (error) {
      // A refused caller gets no keep-alive connection to come back on (issue 14 #4).
      closeAfterRefusal(request, reply);
      throw error;
    }
    const ip = rateSubject(request.ip);
    await limiter.consume('requestsPerIp', ip);
    // The full principal key: the 12-digit `id` is for logs, and two principals could share it.
    await limiter.consume(
      'requestsPerToken',
      request.identity.principalKey,
      request.identity.grants.rateClass,
    );
  };

  async function authenticate(request: FastifyRequest): Promise<Principal> {
    const ip = rateSubject(request.ip);
    // Brute-force protection: an address that failed too often is refused before any check.
    await limiter.assertUnder('authFailuresPerIp', ip);
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
    if (presented === undefined) {
      await limiter.consume('authFailuresPerIp', ip);
      throw new ProxyError(
        'unauthorized',
        'Missing proxy token: send it in the X-Proxy-Token header or as Authorization: Bearer.',
      );
    }
    try {
      const resource = resourceOf(request);
      const principal = await authenticator.authenticate(presented, request.headers.origin, resource);
      if (principal.credentialId !== undefined)
        request.recheckCredential = authenticator.recheckOf(presented, request.headers.origin, resource);
      return principal;
    } catch (error) {
      const code = findProxyError(error)?.code;
      if (code !== undefined && CREDENTIAL_REFUSALS.has(code)) await limiter.consume('authFailuresPerIp', ip);
      throw error;
    }
  }
}
