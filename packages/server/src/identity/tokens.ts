/**
 * @module identity/tokens
 * Proxy-token verification. Several tokens may be valid at once so operators can rotate without
 * downtime. Comparison is constant-time: the presented token is hashed to a fixed length and
 * compared with every configured digest on every check, so timing reveals neither a prefix nor
 * which token matched. The config file names tokens by their SHA-256 only, never in plain text.
 */
import { createHash, hash, timingSafeEqual } from 'node:crypto';

/** A verified caller identity. */
export interface TokenIdentity {
  /** First 12 hex digits of SHA-256(token): for logs, metrics and rate-limit keys only. */
  readonly id: string;
  /**
   * What sessions bind to (sealed ids, held and pooled sessions): the full SHA-256 of the token,
   * `static:<64 hex>`. Never logged. 48 bits (`id`) is too few to bind to: tokens whose digests
   * share a prefix would share sessions.
   */
  readonly principalKey: string;
  /** The operator's name for the token, if the config file gives one. */
  readonly name?: string | undefined;
  /** When set, the only configured servers this token may reach (and no raw URLs). */
  readonly servers?: readonly string[] | undefined;
}

/** A token the proxy accepts: its SHA-256 and what it may do. */
export interface TokenGrant {
  /** SHA-256 of the token, 64 hex digits. */
  readonly sha256: string;
  readonly name?: string | undefined;
  readonly servers?: readonly string[] | undefined;
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
    this.#identities = all.map((grant) => ({
      id: grant.sha256.toLowerCase().slice(0, 12),
      principalKey: `static:${grant.sha256.toLowerCase()}`,
      name: grant.name,
      servers: grant.servers,
    }));
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
