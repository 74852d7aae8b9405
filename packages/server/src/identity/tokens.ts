/**
 * @module identity/tokens
 * Proxy-token verification. Several tokens may be valid at once so operators can rotate without
 * downtime. Comparison is constant-time: the presented token is hashed to a fixed length and
 * compared with every configured digest on every check, so timing reveals neither a prefix nor
 * which token matched. The config file names tokens by their SHA-256 only, never in plain text.
 */
import { createHash, hash, timingSafeEqual } from 'node:crypto';
import type { Principal } from './principal.ts';

/**
 * A static token's principal: `id` is the first 12 hex digits of SHA-256(token) (logs, metrics,
 * rate-limit keys); `principalKey` the full digest, `static:<64 hex>` (48 bits is too few to bind
 * sessions to: tokens whose digests share a prefix would share them).
 */
export type TokenIdentity = Principal;

/** A token the proxy accepts: its SHA-256 and what it may do. */
export interface TokenGrant {
  /** SHA-256 of the token, 64 hex digits. */
  readonly sha256: string;
  readonly name?: string | undefined;
  readonly servers?: readonly string[] | undefined;
  /** URL patterns of raw targets it may reach. */
  readonly urls?: readonly string[] | undefined;
  /** Tools it may list and call. */
  readonly tools?: readonly string[] | undefined;
  /** A rate class of the config's `rateClasses`. */
  readonly rateClass?: string | undefined;
}

/** SHA-256 of a token as hex: how the config file names tokens. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Verifies presented proxy tokens against the configured set. */
export class TokenVerifier {
  #digests: readonly Buffer[] = [];
  #identities: readonly TokenIdentity[] = [];

  /** @param tokens plain tokens (environment) and grants by digest (config file). */
  constructor(tokens: readonly string[], grants: readonly TokenGrant[] = []) {
    this.replace(tokens, grants);
  }

  /** Replaces the set of valid tokens (configuration reload). */
  replace(tokens: readonly string[], grants: readonly TokenGrant[] = []): void {
    const all: TokenGrant[] = [...tokens.map((token) => ({ sha256: tokenDigest(token) })), ...grants];
    this.#digests = all.map((grant) => Buffer.from(grant.sha256.toLowerCase(), 'hex'));
    this.#identities = all.map((grant) => {
      const id = grant.sha256.toLowerCase().slice(0, 12);
      return {
        id,
        principalKey: `static:${grant.sha256.toLowerCase()}`,
        subject: grant.name ?? `token:${id}`,
        auth: 'static',
        grants: {
          servers: grant.servers,
          urls: grant.urls,
          tools: grant.tools,
          rateClass: grant.rateClass,
        },
      };
    });
  }

  /**
   * True while a token with this principal key is still accepted. The one answer to "which
   * owners are still valid" after a reload: sessions and sockets of any other owner end.
   */
  knows(principalKey: string): boolean {
    return this.grantOf(principalKey) !== undefined;
  }

  /** The identity a principal key has now (its servers may have changed on a reload). */
  grantOf(principalKey: string): TokenIdentity | undefined {
    return this.#identities.find((identity) => identity.principalKey === principalKey);
  }

  /** Number of tokens accepted. */
  get size(): number {
    return this.#digests.length;
  }

  /** Returns the identity for a valid token, `undefined` otherwise. */
  verify(candidate: string | undefined): TokenIdentity | undefined {
    if (candidate === undefined || candidate === '') return undefined;
    // The one-shot hash: no Hash object per request (issue #10).
    const presented = hash('sha256', candidate, 'buffer');
    let match = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      // No early exit: every token is compared whatever the outcome.
      if (timingSafeEqual(presented, this.#digests[i] as Buffer) && match === -1) match = i;
    }
    return this.#identities[match];
  }
}
