/**
 * @module identity/hook
 * The Fastify hook that guards protected routes with `X-Proxy-Token`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import { rateSubject } from '../limits/client-address.ts';
import { closeAfterRefusal } from '../limits/connection-deadlines.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import type { Principal } from './principal.ts';
import type { TokenVerifier } from './tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on protected routes. */
    identity: Principal | undefined;
  }
}

/** Header that carries the proxy token. */
export const PROXY_TOKEN_HEADER = 'x-proxy-token';

/** Where else a proxy token may come from, for clients that cannot set headers. */
export interface TokenSources {
  /** Accept `?proxy_token=` (the URL then holds a secret: off unless the operator opts in). */
  readonly query: boolean;
}

/** Builds an `onRequest` hook that rejects requests without a valid proxy token (401). */
export function proxyTokenHook(
  verifier: TokenVerifier,
  limiter: RateLimiter,
  sources: TokenSources = { query: false },
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
    await limiter.consume('requestsPerToken', request.identity.id, request.identity.grants.rateClass);
  };

  async function authenticate(request: FastifyRequest): Promise<Principal> {
    const ip = rateSubject(request.ip);
    // Brute-force protection: an address that failed too often is refused before any check.
    await limiter.assertUnder('authFailuresPerIp', ip);
    const header = request.headers[PROXY_TOKEN_HEADER];
    let presented = typeof header === 'string' ? header : undefined;
    if (presented === undefined && sources.query) {
      const value = (request.query as Record<string, unknown> | undefined)?.proxy_token;
      if (typeof value === 'string') presented = value;
    }
    const identity = verifier.verify(presented);
    if (!identity) {
      await limiter.consume('authFailuresPerIp', ip);
      throw new ProxyError(
        'unauthorized',
        presented === undefined
          ? 'Missing proxy token: send it in the X-Proxy-Token header.'
          : 'Invalid proxy token: check the X-Proxy-Token header.',
      );
    }
    return identity;
  }
}
