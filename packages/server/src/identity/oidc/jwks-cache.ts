/**
 * @module identity/oidc/jwks-cache
 * An issuer's signing keys (its JWKS), cached. Fetched on first use, again when older than
 * `maxAgeMs`, and at once when a token names a key the cache does not hold (the issuer rotated),
 * but never more than once per `cooldownMs`: a flood of tokens with made-up `kid`s costs the
 * identity provider one request per cooldown, not one per token. One fetch at a time; callers
 * that arrive meanwhile share it. Time is the injected clock's, so tests move it.
 */
import type { createLocalJWKSet, FlattenedJWSInput, JSONWebKeySet, JWK, JWSHeaderParameters } from 'jose';
import type { Clock } from '../../clock.ts';
import type { JsonFetcher } from './fetch-json.ts';

/** Settings of a {@link JwksCache}. */
export interface JwksCacheOptions {
  /** The key set's URL (`jwks_uri` from discovery). */
  readonly url: string;
  readonly fetchJson: JsonFetcher;
  readonly clock: Pick<Clock, 'now'>;
  /** Age after which the set is fetched again before use. */
  readonly maxAgeMs: number;
  /** Shortest time between two fetches, whatever asks for them. */
  readonly cooldownMs: number;
}

/** Keys beyond this many are ignored: a key set is a handful of keys. */
const MAX_KEYS = 64;
/** Key types that verify signatures with a public key. `oct` (an HMAC secret) never does here. */
const ASYMMETRIC = new Set(['RSA', 'EC', 'OKP']);
/** Private members a careless provider might publish: never imported. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/** The cached JWKS of one issuer; {@link JwksCache.key} is a `jose` key resolver. */
export class JwksCache {
  readonly #options: JwksCacheOptions;
  #resolver: KeyResolver | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;

  constructor(options: JwksCacheOptions) {
    this.#options = options;
  }

  /**
   * The key that verifies a token with this protected header. Throws `JWKSNoMatchingKey` when
   * none does even after the refetch the cooldown allows, and a plain Error when the set could
   * never be fetched.
   */
  async key(header: JWSHeaderParameters, token: FlattenedJWSInput): ReturnType<KeyResolver> {
    const now = this.#options.clock.now();
    if (this.#resolver === undefined || now - this.#fetchedAt > this.#options.maxAgeMs) {
      await this.#refresh(this.#resolver === undefined);
    }
    try {
      return await this.#current()(header, token);
    } catch (error) {
      const { errors } = await import('jose');
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // An unknown kid: the issuer may have rotated since the last fetch.
      if (!this.#mayFetch()) throw error;
      await this.#refresh(false);
      return await this.#current()(header, token);
    }
  }

  #current(): KeyResolver {
    if (this.#resolver === undefined)
      throw new Error(`no signing keys could be fetched from ${this.#options.url}`);
    return this.#resolver;
  }

  #mayFetch(): boolean {
    return this.#options.clock.now() - this.#attemptedAt >= this.#options.cooldownMs;
  }

  /**
   * Fetches the set unless the cooldown forbids it. A failed fetch keeps the keys already held
   * (an identity provider's blip must not refuse every token); with none held it throws when
   * `mustHave`.
   */
  async #refresh(mustHave: boolean): Promise<void> {
    if (this.#pending === undefined && this.#mayFetch()) {
      this.#attemptedAt = this.#options.clock.now();
      this.#pending = this.#fetch().finally(() => {
        this.#pending = undefined;
      });
    }
    try {
      await this.#pending;
    } catch (error) {
      if (mustHave || this.#resolver === undefined) throw error;
    }
  }

  async #fetch(): Promise<void> {
    const body = await this.#options.fetchJson(this.#options.url);
    const keys = (body as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new Error(`${this.#options.url} is not a JWK set`);
    const usable: JWK[] = [];
    for (const key of keys.slice(0, MAX_KEYS)) {
      if (typeof key !== 'object' || key === null) continue;
      const jwk = { ...(key as JWK) };
      if (typeof jwk.kty !== 'string' || !ASYMMETRIC.has(jwk.kty)) continue;
      if (jwk.use !== undefined && jwk.use !== 'sig') continue;
      for (const member of PRIVATE_MEMBERS) delete (jwk as Record<string, unknown>)[member];
      usable.push(jwk);
    }
    const set: JSONWebKeySet = { keys: usable };
    const { createLocalJWKSet } = await import('jose');
    this.#resolver = createLocalJWKSet(set);
    this.#fetchedAt = this.#options.clock.now();
  }
}
