/**
 * @module identity/oidc/verifier
 * The OIDC way in: `Authorization: Bearer <JWT>` (or any place a proxy token goes) from one of
 * the configured issuers. The token's unverified `iss` only picks which issuer's checks to run
 * ({@link OidcIssuer} verifies it for real). A {@link BearerVerifier} of the Authenticator,
 * which remembers verified principals.
 */
import { ProxyError } from '../../errors.ts';
import type { BearerVerifier, Verified } from '../authenticator.ts';
import { peekJwt } from '../jwt-peek.ts';
import type { Grants } from '../principal.ts';
import { type OidcDeps, OidcIssuer, type OidcIssuerSettings, type OidcTiming } from './issuer.ts';

/** Verifies bearer JWTs of every configured issuer. */
export class OidcVerifier implements BearerVerifier {
  readonly #deps: OidcDeps;
  #timing: OidcTiming;
  #issuers = new Map<string, OidcIssuer>();

  constructor(issuers: readonly OidcIssuerSettings[], timing: OidcTiming, deps: OidcDeps) {
    this.#deps = deps;
    this.#timing = timing;
    this.replace(issuers, timing);
  }

  /**
   * Applies a new issuer list (configuration reload). An issuer whose settings did not change
   * keeps its discovery and keys.
   */
  replace(issuers: readonly OidcIssuerSettings[], timing: OidcTiming): void {
    const sameTiming = JSON.stringify(timing) === JSON.stringify(this.#timing);
    this.#timing = timing;
    const next = new Map<string, OidcIssuer>();
    for (const settings of issuers) {
      const existing = this.#issuers.get(settings.issuer);
      const same = sameTiming && JSON.stringify(existing?.settings) === JSON.stringify(settings);
      next.set(settings.issuer, same && existing ? existing : new OidcIssuer(settings, timing, this.#deps));
    }
    this.#issuers = next;
  }

  /** The configured issuers' settings (for the protected resource metadata). */
  get issuers(): readonly OidcIssuerSettings[] {
    return [...this.#issuers.values()].map((issuer) => issuer.settings);
  }

  /** True while the issuer of an owner (`oidc:<issuer>#<sub>`) is configured. */
  knowsOwner(principalKey: string): boolean {
    const hashAt = principalKey.indexOf('#'); // an issuer has no fragment; a `sub` may hold '#'
    return principalKey.startsWith('oidc:') && hashAt > 5 && this.#issuers.has(principalKey.slice(5, hashAt));
  }

  /**
   * True when `token` looks like a JWT whose `iss` is a configured issuer: the caller then
   * verifies it here rather than as another kind of bearer token.
   */
  accepts(token: string): boolean {
    return this.#issuerOf(token) !== undefined;
  }

  /** Verifies `token` and returns its principal. Throws a {@link ProxyError} (401, 403 or 503). */
  async verify(token: string): Promise<Verified> {
    const issuer = this.#issuerOf(token);
    if (issuer === undefined) {
      throw new ProxyError(
        'token_invalid',
        'The bearer token was refused: its issuer is not one this proxy trusts.',
        {
          data: { reason: 'issuer' },
        },
      );
    }
    return issuer.verify(token);
  }

  /**
   * What the settings in force (the claim mapping of its issuer now) give `token`'s claims, read
   * without verifying it: only for a token verified before (review10 GRANTS-4).
   */
  regrant(token: string): Grants | undefined {
    const issuer = this.#issuerOf(token);
    const claims = peekJwt(token, 1);
    return issuer === undefined || claims === undefined ? undefined : issuer.grantsOf(claims);
  }

  #issuerOf(token: string): OidcIssuer | undefined {
    if (this.#issuers.size === 0) return undefined;
    const iss = peekJwt(token, 1)?.iss;
    return typeof iss === 'string' ? this.#issuers.get(iss) : undefined;
  }
}
