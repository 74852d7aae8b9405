/**
 * @module identity/followed-principal
 * The principal of something held open — a `/ws` socket to a virtual server, a virtual server's
 * GET stream or session (issue 20) — as the configuration in force sees it: THE decision of
 * which grants an open holding answers with after a reload. A static token's are its grants as
 * configured now; a minted token's are its own (fixed when it was minted: verified again, the
 * same, unless they now exceed its minter's: refused); an OIDC token's are what the reloaded claim mapping gives its claims (verified again, as
 * the holdings' recheck does for every credential a reload may narrow). Verification runs once
 * per reload, when the holding is next used.
 */
import { ProxyError } from '../errors.ts';
import type { CredentialRecheck } from './authenticator.ts';
import type { Grants, Principal } from './principal.ts';

/** What the decision reads of the authenticator. */
export interface FollowDeps {
  /** Bumped by every reload that makes verified credentials stale. */
  readonly generation: number;
  /** A static token's grants as configured now; undefined once a reload dropped it. */
  grantsOf(principalKey: string): Grants | undefined;
  /** Whether a minted principal's grants are still within its minter's now (no I/O). */
  stillWithinMinter(principal: Principal): boolean;
}

/** The followed principal of a holding: its principal as verified, and its credential's recheck. */
export type FollowPrincipal = (
  principal: Principal,
  recheck: CredentialRecheck | undefined,
) => FollowedPrincipal;

/** A principal whose grants follow reloads (read {@link grants} after {@link current}). */
export class FollowedPrincipal {
  readonly #deps: FollowDeps;
  readonly #recheck: CredentialRecheck | undefined;
  #principal: Principal;
  /** The generation {@link #principal} was verified under. */
  #verifiedAt: number;
  #verifying: { readonly generation: number; readonly done: Promise<void> } | undefined;

  /**
   * @param principal as verified when the holding opened.
   * @param recheck verifies its credential again (minted and OIDC tokens); a static token needs
   *   none (its grants are read from the configuration), nor one without a credential id.
   */
  constructor(principal: Principal, recheck: CredentialRecheck | undefined, deps: FollowDeps) {
    this.#principal = principal;
    this.#recheck = recheck;
    this.#deps = deps;
    // Verified before a reload that ran since (the recheck was taken first): verified again.
    this.#verifiedAt = recheck?.stale() ? -1 : deps.generation;
  }

  get principalKey(): string {
    return this.#principal.principalKey;
  }

  /** The grants as last verified: call {@link current} first to have those of now. */
  get grants(): Grants {
    return this.#principal.grants;
  }

  /**
   * This principal with the grants its credential stands for now; rejects with the refusal when
   * the configuration no longer accepts it (the holding is being ended for it anyway).
   */
  async current(): Promise<this> {
    const principal = this.#principal;
    if (principal.auth === 'static') {
      const grants = this.#deps.grantsOf(principal.principalKey);
      if (grants === undefined)
        throw new ProxyError('unauthorized', 'The proxy token was revoked by a configuration reload.');
      if (grants !== principal.grants) this.#principal = { ...principal, grants };
      return this;
    }
    const generation = this.#deps.generation;
    const recheck = this.#recheck;
    if (recheck === undefined || this.#verifiedAt === generation) return this;
    let verifying = this.#verifying;
    if (verifying?.generation !== generation) {
      const done = this.#verify(recheck, generation);
      verifying = { generation, done };
      this.#verifying = verifying;
    }
    await verifying.done;
    return this;
  }

  /**
   * What `seen` gives this principal at once, while {@link current} may still be verifying it
   * again (review10 GRANTS-4): what its grants of now give, when they are known without verifying
   * (a static token's as configured now, a minted token's own while within its minter's, any other's once verified under
   * the reload in force); else only what both its grants as last verified and the configuration
   * of now applied to its claims give (an OIDC claim mapping: `regrant`); none when neither can
   * be read without I/O. Fail closed: never more than its grants of now, nor than before.
   */
  seenNow<T>(seen: (grants: Grants) => readonly T[]): readonly T[] {
    const principal = this.#principal;
    if (principal.auth === 'static') {
      const grants = this.#deps.grantsOf(principal.principalKey);
      return grants === undefined ? [] : seen(grants);
    }
    const recheck = this.#recheck;
    if (principal.auth === 'minted')
      return this.#deps.stillWithinMinter(principal) ? seen(principal.grants) : [];
    if (recheck === undefined || this.#verifiedAt === this.#deps.generation) return seen(principal.grants);
    const regranted = recheck.regrant?.();
    if (regranted === undefined) return [];
    const before = new Set(seen(principal.grants));
    return seen(regranted).filter((item) => before.has(item));
  }

  async #verify(recheck: CredentialRecheck, generation: number): Promise<void> {
    let verified: Principal | undefined;
    const refusal = await recheck((now) => {
      verified = now;
      return true;
    });
    if (this.#verifying?.generation === generation) this.#verifying = undefined;
    if (refusal !== undefined) throw refusal;
    // A later reload's verification may have finished first: the newest stands.
    if (verified === undefined || generation < this.#verifiedAt) return;
    this.#principal = verified;
    this.#verifiedAt = generation;
  }
}
