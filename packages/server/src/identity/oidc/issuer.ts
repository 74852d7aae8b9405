/**
 * @module identity/oidc/issuer
 * One trusted OpenID provider: its discovery document (`/.well-known/openid-configuration`,
 * read once, on first use), its signing keys ({@link JwksCache}), and the checks a bearer JWT
 * it issued must pass to become a {@link Principal}: a signature by one of its published
 * asymmetric keys under an allowed algorithm (never `none`, never HMAC: a public key used as an
 * HMAC secret is the classic confusion), its exact `iss`, one of the configured audiences, and
 * `exp`/`nbf` within a small leeway.
 */
import { hash } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { Clock } from '../../clock.ts';
import { ASYMMETRIC_ALGORITHMS, isOidcUrl } from '../../config/oidc-url.ts';
import { ProxyError } from '../../errors.ts';
import type { Verified } from '../authenticator.ts';
import type { Grants, Principal } from '../principal.ts';
import { type ClaimGrantMap, grantsFromClaims } from './claim-grants.ts';
import type { JsonFetcher } from './fetch-json.ts';
import { JwksCache } from './jwks-cache.ts';

export { ASYMMETRIC_ALGORITHMS };

/** What the operator configures for one issuer. */
export interface OidcIssuerSettings {
  /** The issuer identifier, exactly as the tokens' `iss` and the discovery document say it. */
  readonly issuer: string;
  /** Accepted `aud` values (a token must name at least one). */
  readonly audience: readonly string[];
  /** Accepted algorithms, a subset of {@link ASYMMETRIC_ALGORITHMS} (default: all of them). */
  readonly algorithms?: readonly string[] | undefined;
  /** The key set's URL, skipping discovery (for providers without it). */
  readonly jwksUri?: string | undefined;
  /** Claim → value → grants. */
  readonly claims?: ClaimGrantMap | undefined;
  /**
   * Grants of a token no mapping entry matches. With a mapping and no `grants`, such a token is
   * refused (403 `oidc_no_grant`); with neither, every token of the issuer restricts nothing.
   */
  readonly grants?: Grants | undefined;
  /** Scopes advertised in the protected resource metadata (`scopes_supported`). */
  readonly scopes?: readonly string[] | undefined;
  /** Accept only RFC 9068 access tokens (`typ: at+jwt`); otherwise a plain `JWT` or none passes too. */
  readonly requireAtJwt?: boolean | undefined;
}

/** Timing shared by every issuer. */
export interface OidcTiming {
  /** Leeway on `exp` and `nbf`, for clocks that disagree a little. */
  readonly clockToleranceSeconds: number;
  /** Age after which the key set is fetched again. */
  readonly jwksMaxAgeMs: number;
  /** Shortest time between two fetches of the key set (or of discovery after a failure). */
  readonly jwksCooldownMs: number;
}

/** What an issuer needs from the proxy. */
export interface OidcDeps {
  readonly fetchJson: JsonFetcher;
  readonly clock: Pick<Clock, 'now'>;
  /**
   * The proxy's own resource URLs (under `PUBLIC_URL`): accepted as `aud` too, for providers that
   * issue tokens for the RFC 8707 resource a client asked for (the metadata's `resource`).
   */
  readonly resourceAudiences?: (() => readonly string[]) | undefined;
}

/**
 * Token types (`typ`, media type without `application/`, RFC 8725 §3.11) that may be an access
 * token. Others — `logout+jwt`, `secevent+jwt`, `dpop+jwt`… — are JWTs the same provider signs
 * for other purposes, often with an audience this proxy accepts.
 */
const ACCESS_TOKEN_TYPES: ReadonlySet<string | undefined> = new Set(['at+jwt', 'jwt', undefined]);

/** Longest `sub` accepted: it becomes part of a session-binding key. */
const MAX_SUBJECT_LENGTH = 255;

/** Verifies the bearer JWTs of one issuer. */
export class OidcIssuer {
  readonly settings: OidcIssuerSettings;
  readonly #timing: OidcTiming;
  readonly #fetchJson: JsonFetcher;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #resourceAudiences: () => readonly string[];
  readonly #algorithms: string[];
  #jwks: JwksCache | undefined;
  #discovering: Promise<JwksCache> | undefined;
  #discoveryFailedAt = Number.NEGATIVE_INFINITY;

  constructor(settings: OidcIssuerSettings, timing: OidcTiming, deps: OidcDeps) {
    this.settings = settings;
    this.#resourceAudiences = deps.resourceAudiences ?? (() => []);
    this.#timing = timing;
    this.#fetchJson = deps.fetchJson;
    this.#clock = deps.clock;
    const allowed: readonly string[] = ASYMMETRIC_ALGORITHMS;
    // Defence in depth: whatever the config says, only asymmetric algorithms are ever passed on.
    this.#algorithms = (settings.algorithms ?? ASYMMETRIC_ALGORITHMS).filter((alg) => allowed.includes(alg));
  }

  /**
   * Verifies `token` (whose unverified `iss` named this issuer) and returns its principal; with
   * the proxy resources it may be used at when only those made its audience acceptable.
   */
  async verify(token: string): Promise<Verified> {
    // jose loads with the first token verified, not at start (issue #16).
    const jose = await import('jose');
    const jwks = await this.#keys();
    const resourceAudiences = this.#resourceAudiences();
    let payload: JWTPayload;
    let typ: unknown;
    try {
      ({
        payload,
        protectedHeader: { typ },
      } = await jose.jwtVerify(token, (header, input) => jwks.key(header, input), {
        issuer: this.settings.issuer,
        audience: [...this.settings.audience, ...resourceAudiences],
        algorithms: this.#algorithms,
        clockTolerance: this.#timing.clockToleranceSeconds,
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw refusal(error, this.settings.issuer, jose.errors);
    }
    const type = typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : typ;
    if (
      this.settings.requireAtJwt ? type !== 'at+jwt' : !ACCESS_TOKEN_TYPES.has(type as string | undefined)
    ) {
      throw invalid('type', 'its type (`typ`) says it is not an access token');
    }
    const subject = payload.sub;
    // An ill-formed `sub` (a lone surrogate) would key the same slots as its U+FFFD spelling
    // once hashed as UTF-8: two principals, one set of upstream tokens.
    if (
      typeof subject !== 'string' ||
      subject === '' ||
      subject.length > MAX_SUBJECT_LENGTH ||
      !subject.isWellFormed()
    ) {
      throw invalid('subject', 'its `sub` claim is missing, too long or not well-formed Unicode');
    }
    const grants = grantsFromClaims(payload, this.settings.claims, this.settings.grants);
    if (grants === undefined) throw new ProxyError('oidc_no_grant');
    const principalKey = `oidc:${this.settings.issuer}#${subject}`;
    // A configured audience names the proxy as a whole; a resource URL names one endpoint only
    // (RFC 8707), so a token for one configured server is not one for another, or for /proxy.
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    const resources = audiences.some((audience) => this.settings.audience.includes(audience))
      ? undefined
      : audiences.filter((audience) => resourceAudiences.includes(audience));
    const principal: Principal = {
      id: hash('sha256', principalKey, 'hex').slice(0, 12),
      principalKey,
      subject,
      auth: 'oidc',
      grants,
      expiresAt: (payload.exp as number) * 1000,
      // This token's own id, so that what it holds open (a /ws socket, an event stream) ends when
      // it expires, as a minted token's does; sessions bind to the subject and carry on.
      credentialId: `oidc:${hash('sha256', token, 'hex').slice(0, 32)}`,
    };
    return { principal, resources };
  }

  /** The grants these settings' claim mapping gives `claims` (a token's, verified before). */
  grantsOf(claims: JWTPayload): Grants | undefined {
    return grantsFromClaims(claims, this.settings.claims, this.settings.grants);
  }

  /** The key set, after discovery on first use (retried no sooner than the cooldown after a failure). */
  async #keys(): Promise<JwksCache> {
    if (this.#jwks !== undefined) return this.#jwks;
    if (this.#discovering === undefined) {
      if (this.#clock.now() - this.#discoveryFailedAt < this.#timing.jwksCooldownMs) {
        throw unavailable(this.settings.issuer);
      }
      this.#discovering = this.#discover().then(
        (jwks) => {
          this.#jwks = jwks;
          return jwks;
        },
        (error: unknown) => {
          this.#discoveryFailedAt = this.#clock.now();
          this.#discovering = undefined;
          throw unavailable(this.settings.issuer, error);
        },
      );
    }
    return this.#discovering;
  }

  async #discover(): Promise<JwksCache> {
    let url = this.settings.jwksUri;
    if (url === undefined) {
      const where = `${this.settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const document = (await this.#fetchJson(where)) as { issuer?: unknown; jwks_uri?: unknown } | null;
      // OpenID Connect Discovery 1.0 §4.3: the document must name exactly the issuer asked about.
      if (document?.issuer !== this.settings.issuer) throw new Error(`${where} names another issuer`);
      if (typeof document.jwks_uri !== 'string') throw new Error(`${where} has no jwks_uri`);
      // Keys fetched in clear text could be swapped on the way, and whoever wrote the document
      // chooses where the proxy sends a request: https, or plain http to loopback only.
      if (!isOidcUrl(document.jwks_uri, { query: true })) throw new Error(`${where} names no https jwks_uri`);
      url = document.jwks_uri;
    }
    return new JwksCache({
      url,
      fetchJson: this.#fetchJson,
      clock: this.#clock,
      maxAgeMs: this.#timing.jwksMaxAgeMs,
      cooldownMs: this.#timing.jwksCooldownMs,
    });
  }
}

function unavailable(issuer: string, cause?: unknown): ProxyError {
  return new ProxyError(
    'oidc_issuer_unavailable',
    `The identity provider ${issuer} could not be reached for its signing keys: try again shortly.`,
    cause === undefined ? {} : { cause },
  );
}

function invalid(reason: string, why: string): ProxyError {
  return new ProxyError('token_invalid', `The bearer token was refused: ${why}.`, { data: { reason } });
}

/** jose's error classes. */
type JoseErrors = typeof import('jose').errors;

/** A jose failure as the caller's error: which check failed, never a claim's value. */
function refusal(error: unknown, issuer: string, errors: JoseErrors): ProxyError {
  if (ProxyError.is(error)) return error;
  // No jose error is ever attached as a cause: the claim errors carry the token's whole payload
  // (`.payload`), which the request log would print at debug level.
  if (error instanceof errors.JWTExpired)
    return new ProxyError(
      'token_expired',
      'The bearer token has expired: get a new one from your identity provider.',
    );
  if (error instanceof errors.JWTClaimValidationFailed) {
    const reason =
      error.claim === 'nbf'
        ? 'not yet valid'
        : error.claim === 'aud'
          ? 'audience'
          : error.claim === 'iss'
            ? 'issuer'
            : 'claims';
    const why: Record<string, string> = {
      'not yet valid': 'it is not valid yet (`nbf`)',
      audience:
        'it was issued for another audience (`aud`): ask the identity provider for a token for this proxy',
      issuer: 'its issuer (`iss`) is not the configured one',
      claims: `its \`${error.claim}\` claim is missing or malformed`,
    };
    return invalid(reason, why[reason] as string);
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return invalid('algorithm', 'its signature algorithm is not accepted');
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return invalid('key', `no signing key of ${issuer} matches it`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return invalid('signature', 'its signature does not verify');
  if (error instanceof errors.JOSEError) return invalid('malformed', 'it is not a well-formed signed JWT');
  // The key set could not be read (network, a non-JSON answer): not the caller's fault.
  return unavailable(issuer, error);
}
