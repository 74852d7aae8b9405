/**
 * @module identity/authenticator
 * The one answer to "who is this?" for every surface (issue 17): a presented credential becomes a
 * {@link Principal} or a stable refusal. Static tokens are checked first (constant time, no
 * parsing); a JWT whose unverified issuer is the proxy goes to {@link MintedTokens}; other JWTs
 * go to the bearer verifiers plugged in (OIDC). Verified tokens are cached by their SHA-256 until
 * they expire (bounded), so a minted token costs a hash and a map lookup per request, like a
 * static one; a revocation drops its entry on every instance. An announcement can be lost (a
 * Redis subscriber that was down), so a cached minted token is also checked against the store
 * again once its entry is {@link RECHECK_AFTER_MS} old, in the background (the request at hand
 * keeps the cached verdict; a revocation found ends the token as an announced one would): at most
 * one store read per token per period.
 */
import { hash } from 'node:crypto';
import { findProxyError, ProxyError } from '../errors.ts';
import { looksMinted, type MintedTokens } from './minted-tokens.ts';
import { beyondMinter, type MinterBounds, minterGrants } from './minter-bounds.ts';
import type { Grants, Principal } from './principal.ts';
import type { Revocations } from './revocations.ts';
import type { TokenVerifier } from './tokens.ts';

/** A verified bearer token. */
export interface Verified {
  readonly principal: Principal;
  /**
   * The only resources (RFC 8707: the proxy's endpoint URLs) it may be used at, when it was
   * accepted for naming them in its audience; absent: anywhere.
   */
  readonly resources?: readonly string[] | undefined;
}

/** Another kind of bearer token (OIDC): routes on unverified content, then verifies. */
export interface BearerVerifier {
  /** Whether `token` is this verifier's to judge (e.g. its `iss`); nothing is trusted yet. */
  accepts(token: string): boolean;
  /** The principal of a valid token; throws a ProxyError (`token_invalid`, `token_expired`…). */
  verify(token: string): Promise<Verified>;
  /**
   * The grants the settings in force give `token`'s claims, read without verifying it (no I/O):
   * for a token verified before, what holds until it is verified again (review10 GRANTS-4).
   * Undefined when the settings in force take no token like it.
   */
  regrant?(token: string): Grants | undefined;
}

/** What the authenticator consults. */
export interface AuthenticatorDeps {
  readonly statics: TokenVerifier;
  readonly minted: MintedTokens;
  /** What a minted token is judged against again when verified: its minter's grants now. */
  readonly minters: MinterBounds;
  readonly revocations: Revocations;
  readonly now: () => number;
  /** Tried, in order, for JWTs that are not minted here. */
  readonly verifiers?: readonly BearerVerifier[];
  /** Most verified tokens cached (default 10 000); past it the oldest entry goes. */
  readonly cacheEntries?: number;
}

/**
 * Verifies a credential again (after a reload): the refusal it would get now, or `undefined`.
 * `reaches` judges the principal it stands for now (an OIDC token's grants come from the claim
 * mapping in force): false refuses it too, as a reload that took its target away.
 */
export interface CredentialRecheck {
  (reaches?: (principal: Principal) => boolean): Promise<ProxyError | undefined>;
  /**
   * Whether a reload has forgotten the verified tokens since this check was made: the
   * credential was verified under the old keys, issuers or claim mapping, and what it holds
   * now was not held yet when the reload re-verified every holding, so it is checked again
   * as it is held.
   */
  readonly stale: () => boolean;
  /**
   * The grants the configuration in force gives the credential's claims, as they were verified,
   * read without I/O (a bearer verifier's claim mapping: {@link BearerVerifier.regrant}); undefined
   * when only verifying it again can say.
   */
  readonly regrant: () => Grants | undefined;
}

/** How long a cached minted token is trusted before the store is asked again whether it was revoked. */
export const RECHECK_AFTER_MS = 30_000;

/** A verified token, and when the store last said it was not revoked. */
interface Cached extends Verified {
  checkedAt: number;
}

/** A remembered verdict: the token is within its minter's grants. */
const WITHIN = 'within';

/** Three base64url parts: a JWS in compact form (the signature may be empty, as `alg: none`'s is). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Error codes that mean "this credential is refused": they count as failed authentications. */
export const CREDENTIAL_REFUSALS: ReadonlySet<string> = new Set([
  'unauthorized',
  'token_invalid',
  'token_expired',
  'token_revoked',
]);

/** Resolves presented credentials to principals. */
export class Authenticator {
  readonly #deps: AuthenticatorDeps;
  readonly #cache = new Map<string, Cached>();
  /**
   * Per minted token (`jti`), under the reload in force: {@link beyondMinter}'s verdict. Cleared by
   * {@link forgetVerified}; at most `cacheEntries`, the oldest going first.
   */
  readonly #minterVerdicts = new Map<string, ProxyError | typeof WITHIN>();
  readonly #cacheEntries: number;
  /**
   * Fixed for the app's life: a reload changes what a verifier trusts in place (the OIDC
   * verifier's `replace`) and calls {@link forgetVerified}.
   */
  readonly #verifiers: readonly BearerVerifier[];
  /**
   * Bumped whenever the cache is forgotten: a verification begun before (against the old keys,
   * issuers or claim mapping) may answer its own request, but is not remembered.
   */
  #generation = 0;

  constructor(deps: AuthenticatorDeps) {
    this.#deps = deps;
    this.#cacheEntries = deps.cacheEntries ?? 10_000;
    this.#verifiers = deps.verifiers ?? [];
  }

  /**
   * The principal `presented` stands for, checked against the request's `Origin` when the token
   * is bound to one, and against `resource` (the URL, under `PUBLIC_URL`, of the endpoint
   * called) when it was accepted for naming one of the proxy's resources. Throws
   * `unauthorized`, `token_invalid`, `token_expired`, `token_revoked`, `origin_mismatch` or
   * `store_unavailable`.
   */
  async authenticate(presented: string, origin: string | undefined, resource?: string): Promise<Principal> {
    const known = this.authenticateNow(presented, origin, resource);
    if (known) return known;
    const key = cacheKey(presented);
    const generation = this.#generation;
    let verified: Verified;
    if (looksMinted(presented)) {
      const principal = await this.#deps.minted.verify(presented);
      const id = principal.credentialId as string;
      if (await this.#deps.revocations.isRevoked(id)) throw new ProxyError('token_revoked');
      // Its minter was read under `generation`: a reload since may have configured it again.
      const beyond = this.#beyondMinter(principal, generation === this.#generation);
      if (beyond !== undefined) throw beyond;
      verified = { principal };
    } else {
      const verifier = this.#verifiers.find((candidate) => candidate.accepts(presented));
      if (!verifier) {
        // A JWT nobody here issued or trusts (or one altered past recognition).
        if (JWT_SHAPE.test(presented)) throw new ProxyError('token_invalid');
        throw new ProxyError('unauthorized', 'Invalid proxy token.');
      }
      verified = await verifier.verify(presented);
    }
    const expiresAt = verified.principal.expiresAt;
    // Accepted past its `exp` by the verifier's leeway: verified afresh each time, never cached.
    if (expiresAt !== undefined && expiresAt > this.#deps.now() && generation === this.#generation) {
      this.#remember(key, verified);
    }
    return checkOrigin(checkResource(verified, resource), origin);
  }

  /**
   * {@link authenticate} at once for what needs no I/O: a static token, or a token verified
   * before (cached). Throws the same refusals; `undefined` when only {@link authenticate} can
   * say (a token not seen yet).
   */
  authenticateNow(presented: string, origin: string | undefined, resource?: string): Principal | undefined {
    if (presented === '') return undefined;
    // One hash serves both the static tokens and the cache of verified ones. Hex is the one
    // output `hash()` takes without normalising an encoding name: with the Buffer made from it,
    // a third cheaper than asking for a Buffer.
    const key = cacheKey(presented);
    const fixed = this.#deps.statics.verifyDigest(Buffer.from(key, 'hex'));
    if (fixed) return fixed;
    if (this.#cache.size === 0) return undefined;
    const cached = this.#cache.get(key);
    const valid = cached && this.#stillValid(key, cached);
    return valid && checkOrigin(checkResource(valid, resource), origin);
  }

  /**
   * A check of `presented` to run again later (after a reload): the refusal it would get then,
   * or `undefined`. Only minted and bearer tokens need one: a reload ends static ones itself.
   * Taken before the verification it follows starts (or with it, on the cached path), so that
   * its `stale()` tells a reload that ran in between.
   */
  recheckOf(presented: string, origin: string | undefined, resource?: string): CredentialRecheck {
    const generation = this.#generation;
    const recheck = (reaches?: (principal: Principal) => boolean) =>
      this.authenticate(presented, origin, resource).then(
        (principal) =>
          reaches === undefined || reaches(principal)
            ? undefined
            : new ProxyError(
                'unauthorized',
                'A configuration reload revoked the access of this token to this MCP server.',
              ),
        (error: unknown) => findProxyError(error) ?? new ProxyError('token_invalid'),
      );
    const regrant = () =>
      looksMinted(presented)
        ? undefined
        : this.#verifiers.find((verifier) => verifier.accepts(presented))?.regrant?.(presented);
    return Object.assign(recheck, { stale: () => generation !== this.#generation, regrant });
  }

  /** Counts the reloads that made verified tokens stale ({@link forgetVerified}). */
  get generation(): number {
    return this.#generation;
  }

  /** Forgets every verified token (a reload changed the keys or issuers they were checked against). */
  forgetVerified(): void {
    this.#generation++;
    this.#cache.clear();
    this.#minterVerdicts.clear();
  }

  /** Forgets a revoked credential's cache entries. */
  forgetCredential(credentialId: string): void {
    for (const [key, { principal }] of this.#cache) {
      if (principal.credentialId === credentialId) this.#cache.delete(key);
    }
  }

  /**
   * Whether what an owner opened may stay open: a static token until a reload drops it; a
   * minted or OIDC subject always (its tokens expire and are revoked one by one, each ending
   * what it holds).
   */
  knows(principalKey: string): boolean {
    if (principalKey.startsWith('minted:')) return this.#mintedOwnerGrants(principalKey) !== undefined;
    return !principalKey.startsWith('static:') || this.#deps.statics.knows(principalKey);
  }

  /**
   * Whether a minted principal's grants, as verified, are still within its minter's now (without
   * I/O): what an open holding shows before its token is verified again (review10 MINT-2).
   */
  stillWithinMinter(principal: Principal): boolean {
    // Verified under some earlier reload, maybe: a minter found then is the same now (its id is
    // the admin's), but "none configured" may have changed since (review11 VERDICTS-1).
    return this.#beyondMinter(principal, principal.minter !== undefined) === undefined;
  }

  /**
   * {@link beyondMinter}, remembered per token until the next reload (review 11: comparing URL
   * patterns may cost tens of ms): refusals too, or a refused token would pay it at every request.
   * Remembered only when `current`: the principal's minter was read under the reload in force
   * (review11 VERDICTS-1), as the judgement itself reads the configuration in force.
   */
  #beyondMinter(principal: Principal, current: boolean): ProxyError | undefined {
    const id = principal.credentialId;
    if (principal.auth !== 'minted' || id === undefined) return beyondMinter(principal, this.#deps.minters);
    const known = this.#minterVerdicts.get(id);
    if (known !== undefined) return known === WITHIN ? undefined : known;
    const verdict = beyondMinter(principal, this.#deps.minters);
    if (!current) return verdict;
    if (this.#minterVerdicts.size >= this.#cacheEntries) {
      const oldest = this.#minterVerdicts.keys().next();
      if (!oldest.done) this.#minterVerdicts.delete(oldest.value);
    }
    this.#minterVerdicts.set(id, verdict ?? WITHIN);
    return verdict;
  }

  /** The grants a reload judges an owner's open sessions by (`undefined`: refused). */
  grantsOf(principalKey: string): Grants | undefined {
    if (principalKey.startsWith('static:')) return this.#deps.statics.grantOf(principalKey)?.grants;
    // A token's own grants are fixed when it is minted (its verification judges them against
    // its minter's now); a reload only removes servers, or the minter (review10 MINT-2).
    if (principalKey.startsWith('minted:')) return this.#mintedOwnerGrants(principalKey);
    return {};
  }

  /** `{}` while the minter in a minted principal key (`minted:<minter>:<subject>`) is configured. */
  #mintedOwnerGrants(principalKey: string): Grants | undefined {
    const minter = principalKey.slice('minted:'.length, principalKey.indexOf(':', 'minted:'.length));
    return minterGrants(minter, this.#deps.minters) === undefined ? undefined : {};
  }

  /**
   * The cached verdict while it stands; `undefined` once the token's `exp` is past: whether it is
   * still accepted then is the verifier's to say (its leeway is the one rule), and an expired
   * token is never cached again, so it is not admitted and refused by turns.
   */
  #stillValid(key: string, cached: Cached): Verified | undefined {
    const { principal } = cached;
    const now = this.#deps.now();
    if (principal.expiresAt !== undefined && principal.expiresAt <= now) {
      this.#cache.delete(key);
      return undefined;
    }
    const id = principal.credentialId;
    if (id !== undefined && this.#deps.revocations.knownRevoked(id)) {
      this.#cache.delete(key);
      throw new ProxyError('token_revoked');
    }
    if (id !== undefined && principal.auth === 'minted' && now - cached.checkedAt >= RECHECK_AFTER_MS) {
      // Stamped first, so one read serves every request of the period. A revocation the store
      // holds reaches the revocation listeners (this cache, what the token holds); a store that
      // cannot answer leaves the verdict standing (a subscriber that comes back re-checks all).
      cached.checkedAt = now;
      void this.#deps.revocations.confirm(id, principal.expiresAt ?? now).catch(() => {});
    }
    return cached;
  }

  #remember(key: string, verified: Verified): void {
    if (this.#cache.size >= this.#cacheEntries) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
    this.#cache.set(key, { ...verified, checkedAt: this.#deps.now() });
  }
}

/** The cache key of a presented token: its SHA-256 in hex (the token itself is never kept). */
function cacheKey(presented: string): string {
  return hash('sha256', presented);
}

/**
 * Refuses a token accepted for naming some of the proxy's resources at any other: a token for
 * `PUBLIC_URL/servers/a/mcp` is not one for `/servers/b/mcp`, `/mcp` or `/proxy`.
 */
function checkResource({ principal, resources }: Verified, resource: string | undefined): Principal {
  if (resources === undefined || (resource !== undefined && resources.includes(resource))) return principal;
  throw new ProxyError(
    'token_invalid',
    "The bearer token was refused: it was issued for another of this proxy's endpoints (`aud`): ask the identity provider for a token for this one.",
    { data: { reason: 'audience' } },
  );
}

/** Refuses a token bound to an origin when the request comes from another (or none). */
function checkOrigin(principal: Principal, origin: string | undefined): Principal {
  if (principal.origin !== undefined && principal.origin !== origin) throw new ProxyError('origin_mismatch');
  return principal;
}
