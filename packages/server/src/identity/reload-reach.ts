/**
 * @module identity/reload-reach
 * What a reload takes away ends with it (issue 14 #3 and its review): the one decision of
 * whether an owner may keep what it has open to a target under the new configuration.
 */
import type { Config } from '../config/config.ts';
import { digestOfUrls, type GrantsNow, type TargetResolver } from '../dispatch/targets.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import type { VirtualServers } from '../virtual/virtual-servers.ts';
import type { Authenticator } from './authenticator.ts';
import type { MayKeep } from './live-requests.ts';
import type { OidcVerifier } from './oidc/verifier.ts';

/**
 * The owners whose tool grant a reload changes: config tokens whose `tools` changed. What they
 * have open (a socket, a stream) was admitted under the old grant, so it ends (issue 17 and its
 * review, finding 2), as what a reload takes away always does; a virtual server's sockets and
 * sessions are spared by the caller (app.ts): they take the grants of now at each request. Held sessions take each request's
 * current grant anyway. OIDC principals are not listed: which of them a changed mapping narrows
 * is in their tokens, so each holding is re-verified instead (`holdings.recheckAll`; a socket
 * whose tool grant changed ends there).
 */
export function retooledPrincipals(before: Config, after: Config): (ownerId: string) => boolean {
  const tools = (tokens: Config['tokens']) =>
    new Map(tokens.map((token) => [token.sha256.toLowerCase(), JSON.stringify(token.tools ?? null)]));
  const old = tools(before.tokens);
  const keys = new Set<string>();
  for (const [digest, granted] of tools(after.tokens)) {
    if (old.has(digest) && old.get(digest) !== granted) keys.add(`static:${digest}`);
  }
  // OIDC principals are judged again one by one (their tokens re-verified under the new mapping:
  // holdings.recheckAll), and held sessions apply the current caller's tools on every request.
  return (ownerId) => keys.has(ownerId);
}

/** What the decision reads: who is known now, and where each target key still leads. */
export interface ReachDeps {
  readonly oidc: OidcVerifier;
  readonly authenticator: Authenticator;
  /** The target resolver, or what stands for it (it judges virtual servers' names too). */
  readonly targets: Pick<TargetResolver, 'stillReaches'>;
}

/**
 * Whether an owner may keep what it has open to a target, given the servers a reload changed
 * and the principals whose tool grants it changed for what it has open there (their sessions
 * hold the old tool filter).
 */
export function mayKeepAfter(
  { oidc, authenticator, targets }: ReachDeps,
  changed: ReadonlySet<string>,
  retooled: (ownerId: string, targetKey: string | undefined) => boolean = () => false,
): MayKeep {
  return (ownerId, targetKey) => {
    if (retooled(ownerId, targetKey)) return false;
    // An OIDC principal's grants come with each token: a reload re-judges them on its next
    // request; what it holds now ends with its issuer, its issuer's grant mapping, or with a
    // server that changed.
    if (ownerId.startsWith('oidc:'))
      return (
        oidc.knowsOwner(ownerId) &&
        (targetKey === undefined || targets.stillReaches(targetKey, undefined, changed))
      );
    const grants = authenticator.grantsOf(ownerId);
    if (grants === undefined) return false;
    return targetKey === undefined || targets.stillReaches(targetKey, grants, changed);
  };
}

/**
 * Where a target key still leads after a reload, for what is open there: what was opened to a
 * virtual server is judged as one (virtual/virtual-key.ts), whatever a configured server of the
 * same name became (review10 GRANTS-3); anything else by the target resolver, a configured
 * server also while its grants reach it as a member of a virtual server they see.
 */
export function holdingReach(
  virtual: Pick<VirtualServers, 'stillReaches' | 'reachesMember'>,
  targets: Pick<TargetResolver, 'stillReaches'>,
): Pick<TargetResolver, 'stillReaches'> {
  return {
    stillReaches: (key, grants, changed) =>
      virtual.stillReaches(key, grants) ??
      (targets.stillReaches(key, grants, changed) ||
        (virtual.reachesMember(key, grants) && targets.stillReaches(key, undefined, changed))),
  };
}

/** What one reload lets stay open, by kind of holding. */
export interface ReloadVerdicts {
  /** A running request: one admitted under a tool grant the reload changed ends. */
  readonly requests: MayKeep;
  /** A `/ws` socket: one to a virtual server takes the grants of now, and outlives a tool-grant change. */
  readonly sockets: MayKeep;
  /**
   * A held session: one to a virtual server, or a member session behind one (it applies each
   * request's tool grant: review10 GRANTS-5), outlives a tool-grant change. One to a raw URL
   * ends unless every URL it reached (sessions/session-reach.ts) is still reached too, and its
   * owner's URL grant, where the configuration says it, is still the one it was opened under.
   */
  readonly sessions: (ownerId: string, session: HeldSession) => boolean;
}

/** The verdicts of a reload that changed the servers `changed` and the tool grants `retooled` names. */
export function reloadVerdicts(
  reach: ReachDeps,
  changed: ReadonlySet<string>,
  retooled: (ownerId: string) => boolean,
  virtual: Pick<VirtualServers, 'follows'>,
): ReloadVerdicts {
  const requests = mayKeepAfter(reach, changed, retooled);
  const untooled = mayKeepAfter(reach, changed);
  return {
    requests,
    sockets: mayKeepAfter(reach, changed, (owner, key) => retooled(owner) && !virtual.follows(key)),
    sessions: (ownerId, session) => {
      const mayKeep = virtual.follows(session.target, session) ? untooled : requests;
      // And every URL its upstream sent it on to (review14 URLPATTERN-1): an SSE endpoint, a hop.
      const reached = session.reach?.urls ?? [];
      return (
        mayKeep(ownerId, session.target) &&
        [...reached].every((url) => mayKeep(ownerId, url)) &&
        !regranted(reach.authenticator, ownerId, session)
      );
    },
  };
}

/**
 * Whether a session to a raw URL was opened under another URL grant than its owner's now, where
 * the configuration says the owner's grant (a config token): no request of the owner may use it
 * any more (dispatch/held-sessions.ts `servesCaller`), so it ends rather than hold a place under
 * the owner's session cap (review15 URLPATTERN-3). One opened without a URL grant (it may have
 * gone on to more URLs than it records: sessions/session-reach.ts) ends so once its owner has one.
 */
function regranted(
  authenticator: Pick<Authenticator, 'grantsOf'>,
  ownerId: string,
  session: HeldSession,
): boolean {
  if (session.reach === undefined || !ownerId.startsWith('static:')) return false;
  const urls = authenticator.grantsOf(ownerId)?.urls;
  return session.reach.grant !== digestOfUrls(urls);
}

/**
 * An owner's grants after a reload, for a reach test asked after it (a redirect answered later:
 * review15 URLPATTERN-2): a config token's as the configuration says them now; a minted token's
 * are its own, fixed when minted, while its minter is configured; an OIDC principal's come with
 * each of its tokens, so they are not known here (the hop is refused).
 */
export function grantsAfterReload(authenticator: Pick<Authenticator, 'grantsOf'>): GrantsNow {
  return (ownerId, before) => {
    if (ownerId.startsWith('static:')) return authenticator.grantsOf(ownerId);
    if (ownerId.startsWith('minted:')) return authenticator.grantsOf(ownerId) && before;
    return undefined;
  };
}
