/**
 * @module identity/tokens
 * Proxy-token verification. Several tokens may be valid at once so operators can rotate without
 * downtime. Comparison is constant-time: the presented token is hashed to a fixed length and
 * compared with every configured digest on every check, so timing reveals neither a prefix nor
 * which token matched. The config file names tokens by their SHA-256 only, never in plain text.
 */
import { createHash, hash, timingSafeEqual } from 'node:crypto';
import { minterId } from './minted-tokens.ts';
import type { Grants, Principal } from './principal.ts';

/** A token the proxy accepts: its SHA-256, its name, and what it may do. */
export interface TokenGrant extends Grants {
  /** SHA-256 of the token, 64 hex digits. */
  readonly sha256: string;
  /** The operator's name for the token: the principal's subject. */
  readonly name?: string | undefined;
}

/** SHA-256 of a token as hex: how the config file names tokens. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * The named service principal of a static token. `principalKey` is the full SHA-256: 48 bits
 * (`id`) is too few to bind sessions to, tokens whose digests share a prefix would share them.
 */
function staticPrincipal(grant: TokenGrant): Principal {
  const digest = grant.sha256.toLowerCase();
  const id = digest.slice(0, 12);
  return {
    id,
    principalKey: `static:${digest}`,
    subject: grant.name ?? `token:${id}`,
    auth: 'static',
    grants: {
      ...(grant.servers === undefined ? {} : { servers: grant.servers }),
      ...(grant.urls === undefined ? {} : { urls: grant.urls }),
      ...(grant.tools === undefined ? {} : { tools: grant.tools }),
      ...(grant.rateClass === undefined ? {} : { rateClass: grant.rateClass }),
      ...(grant.admin === true ? { admin: true } : {}),
    },
  };
}

/** Verifies presented proxy tokens against the configured set. */
export class TokenVerifier {
  #digests: readonly Buffer[] = [];
  #principals: readonly Principal[] = [];
  /** The admin tokens by the minter id of the tokens they mint (identity/minted-tokens.ts). */
  #admins: ReadonlyMap<string, Grants> = new Map();
  /** Their principal keys. */
  #adminKeys: readonly string[] = [];

  /** @param tokens plain tokens (environment) and grants by digest (config file). */
  constructor(tokens: readonly string[], grants: readonly TokenGrant[] = [], adminToken?: string) {
    this.replace(tokens, grants, adminToken);
  }

  /**
   * Replaces the set of valid tokens (configuration reload). `adminToken` (`ADMIN_TOKEN`) comes
   * first so that, also listed in `PROXY_TOKENS`, it keeps its admin grant.
   */
  replace(tokens: readonly string[], grants: readonly TokenGrant[] = [], adminToken?: string): void {
    const all: TokenGrant[] = [
      ...(adminToken === undefined ? [] : [{ sha256: tokenDigest(adminToken), name: 'admin', admin: true }]),
      ...tokens.map((token) => ({ sha256: tokenDigest(token) })),
      ...grants,
    ];
    this.#digests = all.map((grant) => Buffer.from(grant.sha256.toLowerCase(), 'hex'));
    this.#principals = all.map((grant) => staticPrincipal(grant));
    // A digest listed twice is its first listing, as verify() finds it: an admin listing after a
    // plain one makes no admin (review11 MINTER-1).
    const first = new Map<string, Principal>();
    for (const principal of this.#principals) {
      if (!first.has(principal.principalKey)) first.set(principal.principalKey, principal);
    }
    const admins = [...first.values()].filter((principal) => principal.grants.admin === true);
    this.#adminKeys = admins.map((principal) => principal.principalKey);
    this.#admins = new Map(admins.map((principal) => [minterId(principal.principalKey), principal.grants]));
  }

  /** The principal keys of the admin tokens configured now: who may have minted a token. */
  adminKeys(): readonly string[] {
    return this.#adminKeys;
  }

  /** The grants now of the admin token whose minter id ({@link minterId}) is `minter`; undefined when none. */
  adminGrants(minter: string): Grants | undefined {
    return this.#admins.get(minter);
  }

  /**
   * True while a token with this principal key is still accepted. The one answer to "which
   * owners are still valid" after a reload: sessions and sockets of any other owner end.
   */
  knows(principalKey: string): boolean {
    return this.grantOf(principalKey) !== undefined;
  }

  /** The principal a key has now (its servers may have changed on a reload). */
  grantOf(principalKey: string): Principal | undefined {
    return this.#principals.find((identity) => identity.principalKey === principalKey);
  }

  /** Number of tokens accepted. */
  get size(): number {
    return this.#digests.length;
  }

  /** Returns the principal of a valid token, `undefined` otherwise. */
  verify(candidate: string | undefined): Principal | undefined {
    if (candidate === undefined || candidate === '') return undefined;
    // The one-shot hash: no Hash object per request (issue #10).
    return this.verifyDigest(hash('sha256', candidate, 'buffer'));
  }

  /** {@link verify} for a token already hashed (SHA-256): the authenticator hashes once. */
  verifyDigest(presented: Buffer): Principal | undefined {
    let match = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      // No early exit: every token is compared whatever the outcome.
      if (timingSafeEqual(presented, this.#digests[i] as Buffer) && match === -1) match = i;
    }
    return this.#principals[match];
  }
}
