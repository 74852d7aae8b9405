/**
 * @module virtual/member-reach
 * How one request reaches a member of a virtual server (member-view.ts): the member vetted for
 * its caller (the tool grant read in the member's own names), with the principal's upstream OAuth
 * token when the broker supplies it (docs/oauth.md), a refused token renewed once, and a sign-in
 * asked for that member alone.
 */
import type { VirtualServerSettings } from '../config/virtual-servers.ts';
import type { UpstreamTarget } from '../dispatch/connector.ts';
import type { SessionOwner } from '../dispatch/held-sessions.ts';
import { findProxyError, type ProxyError } from '../errors.ts';
import { memberGrants } from './member-grants.ts';
import type { RoutedRequest, VirtualServersDeps } from './virtual-servers.ts';

/**
 * How members get a principal's upstream OAuth credential: the broker's (credentials/
 * member-credentials.ts), passed in so this layer does not reach up to it.
 */
export interface MemberCredentials {
  /** Whether the broker runs now (OAUTH_BROKER, reloadable). */
  readonly enabled: boolean;
  /**
   * The target with the principal's token from the vault; throws `upstream_auth_required` when a
   * sign-in must come first (`auth: oauth`); the target as it is when the broker does not act.
   * `offer: false` (a list) starts no sign-in: the error then carries no link.
   */
  supply(
    principalKey: string,
    target: UpstreamTarget,
    signal?: AbortSignal,
    offer?: boolean,
  ): Promise<UpstreamTarget>;
  /**
   * After the member refused with 401 the broker's token `supply` gave: the target with a newer
   * token (refreshed), to try the request once more as a named server does (review8 CREDS-3);
   * undefined when there is none (no broker token, the refresh failed). Never rejects.
   */
  renewed(target: UpstreamTarget): Promise<UpstreamTarget | undefined>;
  /**
   * What to answer after the member refused with 401: a sign-in for it, or the refusal itself;
   * with `offer: false`, `upstream_auth_required` without starting a sign-in.
   */
  refused(
    principalKey: string,
    target: UpstreamTarget,
    refusal: ProxyError,
    signal?: AbortSignal,
    offer?: boolean,
  ): Promise<ProxyError>;
}

/** Whom a member is reached for: one request to a virtual server. */
export interface ReachContext {
  readonly settings: VirtualServerSettings;
  readonly request: RoutedRequest;
  readonly deps: VirtualServersDeps;
  /** Who holds the member sessions: the principal, with its rate class. */
  readonly owner: SessionOwner;
}

/** Reaches the members of one virtual server for one request's caller. */
export class MemberReach {
  readonly #context: ReachContext;

  constructor(context: ReachContext) {
    this.#context = context;
  }

  /**
   * Runs `use` on the member, vetted for this caller, with the principal's upstream OAuth token
   * when the broker supplies it (as for a named server: only when neither the operator nor the
   * caller gave a credential). A 401 of the member then asks the principal to sign in to that
   * member only: `upstream_auth_required` is thrown, the other members are not affected.
   * `refuse` may answer first, from the vetted target alone. A list (`offers: false`) only looks
   * in the vault: it starts no sign-in, each of which spends the principal's offer cap.
   */
  async reach<T>(
    member: string,
    use: (target: UpstreamTarget) => Promise<T>,
    refuse?: (target: UpstreamTarget) => T | undefined,
    offers = true,
  ): Promise<T> {
    const resolved = await this.target(member);
    // Refused before the broker is asked: a hidden tool of a member the principal has not signed
    // in to is an unknown tool, not a sign-in.
    const early = refuse?.(resolved);
    if (early !== undefined) return early;
    const credentials = this.#context.deps.credentials;
    if (credentials === undefined || !this.needsBroker(resolved)) return use(resolved);
    const { principalKey } = this.#context.request.caller;
    const signal = this.#context.request.signal;
    let target = await credentials.supply(principalKey, resolved, signal, offers).catch(async (error) => {
      // No token now: a session still held with an ended one must not live on (review7 CREDS-1).
      await this.#context.deps.members.renew(this.#context.owner, resolved);
      throw error;
    });
    for (let attempt = 0; ; attempt++) {
      try {
        return await use(target);
      } catch (error) {
        const refusal = findProxyError(error);
        if (refusal?.code !== 'upstream_unauthorized' || refusal.status !== 401) throw error;
        // A refused token is refreshed and the request tried once more, as for a named server
        // (review8 CREDS-3); refused again, or no newer token, asks for a sign-in.
        const renewed = attempt === 0 ? await credentials.renewed(target) : undefined;
        if (renewed === undefined)
          throw await credentials.refused(principalKey, resolved, refusal, signal, offers);
        target = renewed;
      }
    }
  }

  /** Whether the broker (when it runs) supplies this member's credential: none came with it. */
  needsBroker(target: UpstreamTarget): boolean {
    return (
      this.#context.deps.credentials !== undefined &&
      target.kind !== 'stdio' &&
      target.bearerToken === undefined
    );
  }

  /** The member vetted for this caller, its tool grant read in the member's own names. */
  async target(member: string): Promise<UpstreamTarget> {
    const { servers, separator } = this.#context.settings;
    return this.#context.deps.resolve(
      member,
      memberGrants(this.#context.request.caller.grants, member, servers, separator),
    );
  }
}
