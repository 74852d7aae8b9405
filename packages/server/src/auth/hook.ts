/**
 * @module auth/hook
 * The Fastify hook that guards protected routes with `X-Proxy-Token`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import type { TokenIdentity, TokenVerifier } from './tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on protected routes. */
    identity: TokenIdentity | undefined;
  }
}

/** Header that carries the proxy token. */
export const PROXY_TOKEN_HEADER = 'x-proxy-token';

/** Builds an `onRequest` hook that rejects requests without a valid proxy token (401). */
export function proxyTokenHook(verifier: TokenVerifier) {
  return async function requireProxyToken(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers[PROXY_TOKEN_HEADER];
    const identity = verifier.verify(typeof header === 'string' ? header : undefined);
    if (!identity) {
      throw new ProxyError(
        'unauthorized',
        header === undefined
          ? 'Missing proxy token: send it in the X-Proxy-Token header.'
          : 'Invalid proxy token: check the X-Proxy-Token header.',
      );
    }
    request.identity = identity;
  };
}
