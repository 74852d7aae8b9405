/**
 * @module dispatch/held-sessions
 * The one place a proxy-held session is opened: an upstream connection from the connector, a
 * proxy-issued id in the session store (capped and admitted per
 * principal there), forgotten when its upstream ends. Every route that holds an upstream for a
 * caller comes through here: POST /proxy sessions and one-shot connections, `/mcp` held
 * sessions, the modern pool and `/ws` sockets.
 */
import { HeldSession, type SessionCredential } from '../sessions/held-session.ts';
import { SessionReach } from '../sessions/session-reach.ts';
import type { AddOptions, SessionStore } from '../sessions/store.ts';
import type { UpstreamTransport } from '../upstream/transport.ts';
import type { UpstreamConnector, UpstreamTarget } from './connector.ts';
import { isRawUrlTarget, TargetResolver } from './targets.ts';

/** A session just opened, and the id it is stored under. */
export interface OpenedSession {
  readonly id: string;
  readonly session: HeldSession;
}

/** Who a session is opened for: the principal's key, and the rate class its grants name. */
export interface SessionOwner {
  readonly ownerId: string;
  readonly rateClass?: string | undefined;
}

/** What opening sessions needs. */
export interface HeldSessionsDeps {
  readonly sessions: SessionStore<HeldSession>;
  readonly connector: UpstreamConnector;
  /**
   * Told how opening a stdio or WebSocket upstream went (the status page: they have no HTTP
   * exchange to time): `host` is `stdio:<name>` or the URL's host, `failure` the error if any.
   */
  readonly onOpen?: (host: string, ms: number, failure?: unknown) => void;
}

/** Opens held sessions (stored) and one-shot connections (not stored). */
export class HeldSessions {
  readonly #sessions: SessionStore<HeldSession>;
  readonly #connector: UpstreamConnector;
  readonly #onOpen: HeldSessionsDeps['onOpen'];

  constructor(deps: HeldSessionsDeps) {
    this.#sessions = deps.sessions;
    this.#connector = deps.connector;
    this.#onOpen = deps.onOpen;
  }

  /**
   * Opens a session to `target` for `owner` and stores it under a fresh proxy id, admitted under
   * the owner's rate class. When its upstream ends, the store forgets it (a closed session
   * answers "not found").
   */
  async open(
    owner: SessionOwner,
    target: UpstreamTarget,
    options?: Omit<AddOptions, 'rateClass'>,
  ): Promise<OpenedSession> {
    const sessions = this.#sessions;
    const { id, value } = await sessions.add(owner.ownerId, () => this.#connect(target), {
      ...options,
      rateClass: owner.rateClass,
    });
    value.onClosed(() => void sessions.delete(id));
    return { id, session: value };
  }

  /**
   * A connection for one exchange, closed after `use`. A one-off stdio call is a process: it
   * counts as a session (caps and admission) while it lives (issue #14.7).
   */
  async oneShot<T>(
    owner: SessionOwner,
    target: UpstreamTarget,
    use: (session: HeldSession) => Promise<T>,
  ): Promise<T> {
    const release =
      target.kind === 'stdio' ? await this.#sessions.reserve(owner.ownerId, owner.rateClass) : undefined;
    try {
      const session = await this.#connect(target);
      try {
        return await use(session);
      } finally {
        await session.close();
      }
    } finally {
      release?.();
    }
  }

  async #connect(named: UpstreamTarget): Promise<HeldSession> {
    // No tool filter here: each request brings its caller's (HeldSession.request).
    const key = TargetResolver.key(named);
    const { target, reach } = reachOf(named);
    const held = (upstream: UpstreamTransport) =>
      new HeldSession(key, upstream, target.kind, credentialOf(target), reach);
    const onOpen = this.#onOpen;
    if (onOpen === undefined || (target.kind !== 'stdio' && target.kind !== 'websocket'))
      return held(await this.#connector.open(target));
    const host = target.kind === 'stdio' ? `stdio:${target.name}` : target.url.host;
    const started = performance.now();
    try {
      const upstream = await this.#connector.open(target);
      onOpen(host, performance.now() - started);
      return held(upstream);
    } catch (error) {
      onOpen(host, performance.now() - started, error);
      throw error;
    }
  }
}

/**
 * Whether a caller whose request resolved to `target` (its key `targetKey`) may use `session`:
 * one to the same target, opened under the same URL grant (its digest, dispatch/targets.ts): a
 * sibling token with another grant does not ride it, nor a caller whose grant a reload changed
 * (review14 URLPATTERN-2). Otherwise the session is not the caller's (`session_not_found`).
 */
export function servesCaller(session: HeldSession, targetKey: string, target: UpstreamTarget): boolean {
  const grant = target.kind === 'stdio' ? undefined : target.urlGrant;
  return endableBy(session, targetKey) && session.reach?.grant === grant;
}

/**
 * {@link servesCaller}, and when it does, the session judges its upstream's further hops by this
 * caller's reach test (`target.mayReach`, made for the request: sessions/session-reach.ts
 * `judgeBy`). What a request that uses a held session calls.
 */
export function serveCaller(session: HeldSession, targetKey: string, target: UpstreamTarget): boolean {
  if (!servesCaller(session, targetKey, target)) return false;
  if (target.kind !== 'stdio') session.reach?.judgeBy(target.mayReach);
  return true;
}

/**
 * Whether a caller whose request resolved to `targetKey` may END `session` (the store gave it to
 * its owner): one to the same target, under any URL grant (review15 URLPATTERN-3).
 */
export function endableBy(session: HeldSession, targetKey: string): boolean {
  return session.target === targetKey;
}

/**
 * A raw URL target's session records its caller's URL grant and every URL its upstream sends it
 * on to (sessions/session-reach.ts), whether or not a URL grant limits it now: a reload may add
 * one. A configured server's redirects and endpoint are the operator's choice.
 */
function reachOf(target: UpstreamTarget): { target: UpstreamTarget; reach?: SessionReach } {
  if (target.kind === 'stdio' || !isRawUrlTarget(target)) return { target };
  const reach = new SessionReach(target.urlGrant);
  return { target: { ...target, mayReach: reach.judging(target.mayReach) }, reach };
}

/** The broker's credential a session to `target` holds (review6 OAUTH-1), if any. */
function credentialOf(target: UpstreamTarget): SessionCredential | undefined {
  return target.kind === 'stdio' ? undefined : target.credential;
}
