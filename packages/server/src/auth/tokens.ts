/**
 * @module auth/tokens
 * Proxy-token verification. Several tokens may be valid at once so operators can rotate without
 * downtime. Comparison is constant-time: both sides are hashed to a fixed length first, and
 * every configured token is compared on every check, so timing reveals neither a prefix nor
 * which token matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** A verified caller identity: a stable, non-secret id derived from the token that matched. */
export interface TokenIdentity {
  /** First 12 hex digits of SHA-256(token): safe to log, used to bind sessions to a token. */
  readonly id: string;
}

/** Verifies presented proxy tokens against the configured set. */
export class TokenVerifier {
  #digests: readonly Buffer[] = [];
  #ids: readonly string[] = [];

  constructor(tokens: readonly string[]) {
    this.replace(tokens);
  }

  /** Replaces the set of valid tokens (configuration reload). */
  replace(tokens: readonly string[]): void {
    this.#digests = tokens.map(digest);
    this.#ids = this.#digests.map((d) => d.toString('hex').slice(0, 12));
  }

  /** Returns the identity for a valid token, `undefined` otherwise. */
  verify(candidate: string | undefined): TokenIdentity | undefined {
    if (candidate === undefined || candidate === '') return undefined;
    const presented = digest(candidate);
    let match = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      // No early exit: every token is compared whatever the outcome.
      if (timingSafeEqual(presented, this.#digests[i] as Buffer) && match === -1) match = i;
    }
    const id = this.#ids[match];
    return id === undefined ? undefined : { id };
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
