/**
 * @module identity/minted-tokens
 * Short-lived user tokens an app's backend asks the proxy for (issue 17): signed JWTs (`EdDSA`,
 * `kid`, `typ: mcp-proxy+jwt`) carrying the subject, the grants the backend chose, an optional
 * origin and a `jti` to revoke by. Verification accepts exactly what minting makes: EdDSA only
 * (never `none`, never an HMAC keyed with a public key), our issuer and audience, a known `kid`,
 * an `exp` no later than the TTL cap allows. The caller sees stable codes, never jose's wording.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { ProxyError } from '../errors.ts';
import { normalPattern } from '../policy/url-pattern-normal.ts';
import { peekJwt } from './jwt-peek.ts';
import { CLI_MINTER } from './mint-records.ts';
import type { Grants, Principal } from './principal.ts';
import { SigningKeyError, type SigningKeys } from './signing-keys.ts';

/** `iss` and `aud` of every minted token: the proxy issues them for itself. */
export const MINTED_ISSUER = 'mcp-proxy';
/** The JWS `typ` of a minted token, so it is never mistaken for another kind of JWT. */
export const MINTED_TYPE = 'mcp-proxy+jwt';
/** The longest a minted token may live (issue 17: 24 h). */
export const MAX_TTL_SECONDS = 86_400;
/**
 * The largest token minted, in bytes: it travels in a request header (Node refuses headers past
 * 16 KB in total, proxies in front often at 8 KB), so one that would not fit is refused at mint.
 */
export const MAX_TOKEN_BYTES = 8_192;
/** Seconds of clock difference tolerated between the minting and the verifying instance. */
const LEEWAY_SECONDS = 5;
/** A minted token's `jti` (its `id`): 16 random bytes, base64url. */
export const TOKEN_ID = /^[A-Za-z0-9_-]{22}$/;
/**
 * What a subject may be (it names a principal, reaches session keys and the audit trail): 1 to
 * 256 characters, no control, format (bidi overrides, zero-width), line/paragraph separator or
 * lone surrogate characters, no surrounding whitespace — so two subjects that look the same are the same. Minting
 * takes it in NFC ({@link normalSubject}); verification refuses any other form.
 */
export const SUBJECT = /^(?!\s)[^\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]{1,256}(?<!\s)$/u;

/**
 * A minter id: 16 hex digits. A minted principal's `minter` ({@link minterId}) scopes it (review10
 * MINT-5): two admins minting the same subject make two principals, which share no session or
 * upstream sign-in; and it names whose grants the token must stay within (review10 MINT-2). The
 * token's `minter` claim ({@link minterClaim}) has the same shape but is keyed by the signing key.
 */
export const MINTER_ID = /^[0-9a-f]{16}$/;

/** The minter id of the principal `principalKey` (`cli` for `npm run token`): never in a token. */
export function minterId(principalKey: string): string {
  return createHash('sha256').update(principalKey).digest('hex').slice(0, 16);
}

/**
 * The `minter` claim of the tokens `principalKey` mints under a signing key (its
 * `minterSecret`): an HMAC, so that a browser reading the claim cannot test guesses at the
 * admin token offline, as it could a hash of its principal key (review 11).
 */
export function minterClaim(principalKey: string, minterSecret: Buffer): string {
  return createHmac('sha256', minterSecret).update(principalKey).digest('hex').slice(0, 16);
}

/** `subject` in NFC: the one spelling a principal is keyed by. */
export function normalSubject(subject: string): string {
  return subject.normalize('NFC');
}

/**
 * What a backend asks for: a subject, a lifetime, an origin, and the token's grants as
 * {@link Grants} describes them (never `admin`; the rate class is the minter's, so a token never
 * escapes its minter's limits).
 */
export interface MintRequest extends Pick<Grants, 'servers' | 'urls' | 'tools' | 'rateClass'> {
  readonly subject: string;
  /** Capped at {@link MAX_TTL_SECONDS}. */
  readonly ttlSeconds: number;
  /** `https://app.example`: the token is refused from any other `Origin`. */
  readonly origin?: string | undefined;
}

/** What a backend gets back. */
export interface MintedToken {
  readonly token: string;
  /** ISO 8601. */
  readonly expiresAt: string;
  /** The `jti`: what `DELETE /auth/tokens/{id}` takes. */
  readonly id: string;
}

/** The claims beyond the registered ones. */
interface MintedClaims extends JWTPayload {
  readonly minter?: string;
  readonly servers?: string[];
  readonly urls?: string[];
  readonly tools?: string[];
  readonly rateClass?: string;
  readonly origin?: string;
}

/** The principal of a subject minted by `minter` (the same for every token that minter mints for it). */
function mintedPrincipal(
  subject: string,
  minter: string | undefined,
  grants: Grants,
  extra: { expiresAt: number; origin?: string | undefined; credentialId: string },
): Principal {
  // No minter: none configured now minted it (refused as such: identity/minter-bounds.ts).
  const principalKey = `minted:${minter ?? 'unknown'}:${subject}`;
  return {
    id: createHash('sha256').update(principalKey).digest('hex').slice(0, 12),
    principalKey,
    subject,
    auth: 'minted',
    grants,
    ...(minter === undefined ? {} : { minter }),
    expiresAt: extra.expiresAt,
    ...(extra.origin === undefined ? {} : { origin: extra.origin }),
    credentialId: extra.credentialId,
  };
}

/** True when `token` is a JWT whose (unverified) `typ` or issuer says it is ours: routing only. */
export function looksMinted(token: string): boolean {
  const header = peekJwt(token, 0);
  if (header === undefined) return false;
  return header.typ === MINTED_TYPE || peekJwt(token, 1)?.iss === MINTED_ISSUER;
}

/** Signs and verifies minted tokens with the current {@link SigningKeys}. */
export class MintedTokens {
  readonly #keys: SigningKeys;
  readonly #now: () => number;
  readonly #minters: () => Iterable<string>;

  /** `minters`: the principal keys of the admin tokens configured now (`cli` is always one). */
  constructor(keys: SigningKeys, now: () => number = Date.now, minters: () => Iterable<string> = () => []) {
    this.#keys = keys;
    this.#now = now;
    this.#minters = minters;
  }

  /** Signs a token for `request` with the newest key; `minter`: the minting principal's key (or `cli`). */
  async mint(request: MintRequest, minter: string): Promise<MintedToken> {
    let key: ReturnType<SigningKeys['signer']>;
    try {
      key = this.#keys.signer();
    } catch (error) {
      // The generated key cannot be kept (DATA_DIR unwritable): the operator's to fix, not a bug.
      if (error instanceof SigningKeyError)
        throw new ProxyError('signing_key_unavailable', undefined, { cause: error });
      throw error;
    }
    const issuedAt = Math.floor(this.#now() / 1000);
    const expires = issuedAt + Math.min(Math.max(1, Math.floor(request.ttlSeconds)), MAX_TTL_SECONDS);
    const id = randomBytes(16).toString('base64url');
    const claims: MintedClaims = {
      minter: minterClaim(minter, key.minterSecret),
      ...(request.servers === undefined ? {} : { servers: [...request.servers] }),
      ...(request.urls === undefined ? {} : { urls: [...request.urls] }),
      ...(request.tools === undefined ? {} : { tools: [...request.tools] }),
      ...(request.rateClass === undefined ? {} : { rateClass: request.rateClass }),
      ...(request.origin === undefined ? {} : { origin: request.origin }),
    };
    // jose loads with the first token minted or verified, not at start (issue #16).
    const { SignJWT } = await import('jose');
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: MINTED_TYPE })
      .setIssuer(MINTED_ISSUER)
      .setAudience(MINTED_ISSUER)
      .setSubject(request.subject)
      .setJti(id)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expires)
      .sign(key.privateKey);
    if (token.length > MAX_TOKEN_BYTES) {
      throw new ProxyError(
        'invalid_token_request',
        `Invalid token request: the token would be too large for a header (${token.length} bytes, at most ${MAX_TOKEN_BYTES}): grant fewer or shorter tools, servers or URL patterns`,
      );
    }
    return { token, expiresAt: new Date(expires * 1000).toISOString(), id };
  }

  /** The principal of a valid token; throws `token_expired` or `token_invalid`. */
  async verify(token: string): Promise<Principal> {
    const { errors, jwtVerify } = await import('jose');
    let payload: MintedClaims;
    let kid: string | undefined;
    try {
      const verified = await jwtVerify<MintedClaims>(
        token,
        (header) => {
          const key = this.#keys.verifier(header.kid);
          if (!key)
            throw new ProxyError('token_invalid', 'The token names a signing key this proxy does not have.');
          return key;
        },
        {
          algorithms: ['EdDSA'],
          issuer: MINTED_ISSUER,
          audience: MINTED_ISSUER,
          typ: MINTED_TYPE,
          requiredClaims: ['sub', 'jti', 'exp', 'iat'],
          currentDate: new Date(this.#now()),
          clockTolerance: LEEWAY_SECONDS,
          maxTokenAge: MAX_TTL_SECONDS + LEEWAY_SECONDS,
        },
      );
      payload = verified.payload;
      kid = verified.protectedHeader.kid;
    } catch (error) {
      if (error instanceof ProxyError) throw error;
      if (error instanceof errors.JWTExpired) throw new ProxyError('token_expired');
      throw new ProxyError('token_invalid');
    }
    // jose checks these claims are present, not their types: take only what minting makes.
    const { sub, jti, exp, iat } = payload as Record<string, unknown>;
    if (
      typeof sub !== 'string' ||
      !SUBJECT.test(sub) ||
      sub !== normalSubject(sub) ||
      typeof jti !== 'string' ||
      !TOKEN_ID.test(jti) ||
      typeof exp !== 'number' ||
      typeof iat !== 'number' ||
      exp - iat > MAX_TTL_SECONDS + LEEWAY_SECONDS ||
      !validList(payload.servers) ||
      !validList(payload.urls) ||
      !validList(payload.tools) ||
      !(payload.rateClass === undefined || typeof payload.rateClass === 'string')
    ) {
      throw new ProxyError('token_invalid');
    }
    if (payload.origin !== undefined && typeof payload.origin !== 'string')
      throw new ProxyError('token_invalid');
    const { minter } = payload;
    if (typeof minter !== 'string' || !MINTER_ID.test(minter))
      throw new ProxyError(
        'token_invalid',
        'The token was minted by an earlier version of the proxy (it names no minter): mint a new one.',
      );
    // Never trusted (nor cached) past what verification itself would accept.
    const expiresAt = Math.min(exp, iat + MAX_TTL_SECONDS) * 1000;
    // The leeway above is for `iat` from another instance's clock; `exp` is strict (docs/errors.md),
    // the one rule the verified-token cache applies too: a token is not admitted and refused by turns.
    if (expiresAt <= this.#now()) throw new ProxyError('token_expired');
    const minterNow = this.#minterOf(minter, kid);
    if (minterNow === undefined && this.#inEarlierForm(minter))
      throw new ProxyError(
        'token_invalid',
        'The token was minted by an earlier version of the proxy (its minter claim is in a form no longer accepted): mint a new one.',
      );
    return mintedPrincipal(
      sub,
      minterNow,
      {
        ...(payload.servers === undefined ? {} : { servers: payload.servers }),
        ...(payload.urls === undefined ? {} : { urls: normalPatterns(payload.urls) }),
        ...(payload.tools === undefined ? {} : { tools: payload.tools }),
        ...(payload.rateClass === undefined ? {} : { rateClass: payload.rateClass }),
      },
      { expiresAt, origin: payload.origin, credentialId: jti },
    );
  }
  /**
   * The minter id ({@link minterId}) of the minter configured now whose claim under the key `kid`
   * is `claim`; undefined when none is (its admin token is no longer configured).
   */
  #minterOf(claim: string, kid: string | undefined): string | undefined {
    const secret = this.#keys.minterSecret(kid);
    if (secret === undefined) return undefined;
    for (const principalKey of [CLI_MINTER, ...this.#minters()]) {
      if (minterClaim(principalKey, secret) === claim) return minterId(principalKey);
    }
    return undefined;
  }

  /**
   * Whether `claim` names a minter configured now in the form tokens carried before it was keyed
   * by the signing key (its {@link minterId}): such a token is refused as minted by an earlier
   * version, not as one whose admin is gone.
   */
  #inEarlierForm(claim: string): boolean {
    for (const principalKey of [CLI_MINTER, ...this.#minters()]) {
      if (minterId(principalKey) === claim) return true;
    }
    return false;
  }
}

/**
 * A token's URL patterns in normal form (policy/url-pattern-normal.ts), as config and mint
 * requests are taken in: a token minted before they were carries them as written, and is judged
 * against its minter and matched in the form its minter's now are (review12 URLPATTERN-5). A
 * pattern with no normal form matches nothing, so it is left out (the list is kept, even empty).
 */
function normalPatterns(patterns: readonly string[]): string[] {
  return patterns.flatMap((pattern) => {
    const normal = normalPattern(pattern);
    return 'pattern' in normal ? [normal.pattern] : [];
  });
}

function validList(value: unknown): value is string[] | undefined {
  return value === undefined || (Array.isArray(value) && value.every((item) => typeof item === 'string'));
}
