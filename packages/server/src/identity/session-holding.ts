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

/** An `onSend` step run after the holding: it calls `done` itself (e.g. the relay's claim). */
export type OnSendStep = (
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
  done: (error: Error | null, payload: unknown) => void,
) => void;

/**
 * An `onSend` hook that registers a proxy-held session a minted token was answered with, so its
 * revocation ends it (callback-style: an async hook costs a promise on every request), then
 * runs `then` (the ownership claim of issue 19) or passes the payload on.
 */
export function holdSessionHook(
  holdings: CredentialHoldings,
  sessions: HeldSessionIds,
  then?: OnSendStep,
): OnSendStep {
  return (request, reply, payload, done) => {
    const principal = request.identity;
    const id = reply.getHeader('mcp-session-id');
    if (
      principal?.credentialId !== undefined &&
      typeof id === 'string' &&
      id.startsWith(PROXY_SESSION_PREFIX) &&
      // A session relayed from another instance is held (and ended on revocation) there.
      sessions.has(id)
    ) {
      holdings.hold(principal, () => void sessions.delete(id), {
        endsAtExpiry: false,
        key: id,
        alive: () => sessions.has(id),
      });
    }
    if (then) then(request, reply, payload, done);
    else done(null, payload);
  };
}
