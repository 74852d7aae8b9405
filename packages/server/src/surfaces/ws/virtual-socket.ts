/**
 * @module surfaces/ws/virtual-socket
 * `/ws?server=<virtual>` (issue 20): a socket to a virtual server is served like one to a named
 * server, through a held session of its own for the socket's life; that session is the virtual
 * server held as one session-era server (virtual/virtual-session.ts), so a 2025 client gets what
 * members send on the socket (progress, log messages, list changes, server requests it answers
 * on the socket) and a 2026-07-28 client input rounds and `subscriptions/listen`, as for any
 * session-era server. No target is resolved and no upstream credential taken: each member is
 * reached with its own, per request.
 */
import type { HeldSessions, OpenedSession } from '../../dispatch/held-sessions.ts';
import type { TargetRequest } from '../../dispatch/targets.ts';
import { ProxyError } from '../../errors.ts';
import type { FollowedPrincipal } from '../../identity/followed-principal.ts';
import type { Principal } from '../../identity/principal.ts';
import { virtualKey } from '../../virtual/virtual-key.ts';
import type { VirtualPoolTarget, VirtualSessions } from '../../virtual/virtual-session.ts';
import type { WsPeer } from './connection.ts';

/** A socket's peer whose target is a virtual server. */
export type VirtualPeer = WsPeer & { readonly target: VirtualPoolTarget };

/**
 * The socket's peer when the handshake names a virtual server (one the caller's grants reach:
 * else it looks unknown, thrown); undefined for any other target. Its requests are answered with
 * the grants `follow` gives of now (a reload may narrow or widen them while the socket is open).
 */
export function virtualPeer(
  virtual: VirtualSessions | undefined,
  target: TargetRequest,
  identity: Principal,
  follow: () => FollowedPrincipal,
): VirtualPeer | undefined {
  const name = 'server' in target ? target.server : undefined;
  if (virtual === undefined || name === undefined || !virtual.has(name)) return undefined;
  virtual.checkReach(name, identity);
  return {
    ownerId: identity.principalKey,
    target: { kind: 'virtual', name, caller: follow() },
    targetKey: virtualKey(name),
    rateClass: identity.grants.rateClass,
  };
}

/** Opens a socket's session for its life: a virtual server's own, or a held session to its target. */
export function openSocketSession(
  held: HeldSessions,
  virtual: VirtualSessions | undefined,
  peer: WsPeer,
): Promise<OpenedSession> {
  const { target } = peer;
  if (target.kind !== 'virtual') return held.open(peer, target, { expires: false });
  if (virtual === undefined) return Promise.reject(new ProxyError('unknown_server'));
  return virtual.openSocket(peer, target);
}
