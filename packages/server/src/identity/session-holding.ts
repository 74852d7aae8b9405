/**
 * @module identity/session-holding
 * A proxy-held session answered to a minted token is registered with that token's holdings, so
 * the token's revocation (or expiry check) ends the session too.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PROXY_SESSION_PREFIX } from '../sessions/store.ts';
import type { CredentialHoldings } from './credential-holdings.ts';

/** The two things the hook asks of the session store. */
export interface HeldSessionIds {
  has(id: string): boolean;
  delete(id: string): Promise<void>;
}

/**
 * An `onSend` hook that registers a proxy-held session a minted token was answered with, so its
 * revocation ends it (callback-style: an async hook costs a promise on every request).
 */
export function holdSessionHook(holdings: CredentialHoldings, sessions: HeldSessionIds) {
  return (
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: Error | null, payload: unknown) => void,
  ): void => {
    const principal = request.identity;
    const id = reply.getHeader('mcp-session-id');
    if (
      principal?.credentialId !== undefined &&
      typeof id === 'string' &&
      id.startsWith(PROXY_SESSION_PREFIX)
    ) {
      holdings.hold(principal, () => void sessions.delete(id), {
        endsAtExpiry: false,
        key: id,
        alive: () => sessions.has(id),
      });
    }
    done(null, payload);
  };
}
