/**
 * @module credentials/vault
 * Upstream tokens at rest (issue 18): one entry per (principal, resource), encrypted with
 * AES-256-GCM ({@link seal}) in the shared store, so the sqlite file or Redis never holds a token in
 * clear and several instances share what a user connected. The slot name is a hash: the store
 * does not even learn who connected to what.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.ts';
import { open, seal } from './sealed-box.ts';
import type { VaultKeys } from './vault-keys.ts';

/** What the vault keeps for one principal and one upstream resource. */
export interface VaultEntry {
  readonly accessToken: string;
  readonly refreshToken?: string | undefined;
  /** When the access token expires (ms since the epoch); absent: unknown. */
  readonly expiresAt?: number | undefined;
  readonly scope?: string | undefined;
  readonly issuer: string;
  /** The vault slot's resource: the MCP server's URL. */
  readonly resource: string;
  /** The RFC 8707 resource indicator the tokens were asked for. */
  readonly indicator: string;
  /** The client the tokens were issued to (its store key), for refresh. */
  readonly clientId: string;
}

/** How long an entry lives in the store without a refresh token (its access token's life). */
const KEEP_WITH_REFRESH_MS = 90 * 24 * 3600 * 1000;

/** Tokens per (principal, resource), sealed in the store. */
export class TokenVault {
  readonly #store: Store;
  readonly #keys: VaultKeys;
  readonly #now: () => number;

  constructor(store: Store, keys: VaultKeys, now: () => number = Date.now) {
    this.#store = store;
    this.#keys = keys;
    this.#now = now;
  }

  /** The store slot of (principal, resource): a hash, never the principal key itself. */
  static slot(principalKey: string, resource: string): string {
    return createHash('sha256').update(`${principalKey}\n${resource}`).digest('base64url');
  }

  /**
   * The store lock of a slot: held by whoever rewrites the entry from what it read (a refresh,
   * a disconnect), so one cannot bring back what the other just replaced or deleted.
   */
  static lock(slot: string): string {
    return `lock:${slot}`;
  }

  /** The entry for (principal, resource), if any and readable. */
  async get(principalKey: string, resource: string): Promise<VaultEntry | undefined> {
    return (await this.read(principalKey, resource))?.entry;
  }

  /** The entry and its sealed form (for {@link deleteIfSealed}), if any and readable. */
  async read(
    principalKey: string,
    resource: string,
  ): Promise<{ entry: VaultEntry; sealed: string } | undefined> {
    const slot = TokenVault.slot(principalKey, resource);
    const sealed = await this.#store.get(slot);
    if (sealed === undefined) return undefined;
    const plain = open(this.#keys, slot, sealed);
    if (plain === undefined) return undefined;
    try {
      return { entry: JSON.parse(plain) as VaultEntry, sealed };
    } catch {
      return undefined;
    }
  }

  /**
   * Forgets the entry only while it is still `sealed` (as {@link read} gave it): what another
   * request or instance stored since (a refresh, a new sign-in) stays.
   */
  async deleteIfSealed(principalKey: string, resource: string, sealed: string): Promise<boolean> {
    return this.#store.deleteIf(TokenVault.slot(principalKey, resource), sealed);
  }

  /** Stores (replaces) the entry for (principal, resource). */
  async put(principalKey: string, entry: VaultEntry): Promise<void> {
    const { slot, sealed, ttl } = this.#sealed(principalKey, entry);
    await this.#store.set(slot, sealed, ttl);
  }

  /**
   * Stores the entry only while the slot still holds `sealed` (as {@link read} gave it): a
   * refresh that read an entry must not overwrite what a sign-in stored since (review6 OAUTH-3).
   * False when it lost: the slot holds something newer, or nothing any more.
   */
  async putIfSealed(principalKey: string, entry: VaultEntry, sealed: string): Promise<boolean> {
    const next = this.#sealed(principalKey, entry);
    return this.#store.replaceIf(next.slot, sealed, next.sealed, next.ttl);
  }

  /** The slot, sealed form and store TTL of an entry. */
  #sealed(principalKey: string, entry: VaultEntry): { slot: string; sealed: string; ttl: number } {
    const slot = TokenVault.slot(principalKey, entry.resource);
    const ttl =
      entry.refreshToken !== undefined
        ? KEEP_WITH_REFRESH_MS
        : entry.expiresAt !== undefined
          ? Math.max(1000, entry.expiresAt - this.#now())
          : KEEP_WITH_REFRESH_MS;
    return { slot, sealed: seal(this.#keys, slot, JSON.stringify(entry)), ttl };
  }

  /** Forgets the entry (refresh refused, user disconnected). */
  async delete(principalKey: string, resource: string): Promise<void> {
    await this.#store.delete(TokenVault.slot(principalKey, resource));
  }

  /**
   * Records that the user ended (principal, resource) — a disconnect or an eviction — with a new
   * random mark. What still holds a token of that connection (an open `/ws` socket, a WebSocket
   * upstream that authenticated once at its handshake) compares the mark it read when it opened
   * with the current one and ends when they differ (review oauth6 R1): deleting the vault entry
   * alone never reaches a token already handed out. Lives as long as a vault entry may.
   */
  async markEnded(principalKey: string, resource: string): Promise<void> {
    const key = TokenVault.endedKey(TokenVault.slot(principalKey, resource));
    await this.#store.set(key, randomBytes(12).toString('base64url'), KEEP_WITH_REFRESH_MS);
  }

  /** The current end mark of (principal, resource) ({@link markEnded}); undefined: never ended. */
  async endMark(principalKey: string, resource: string): Promise<string | undefined> {
    return this.#store.get(TokenVault.endedKey(TokenVault.slot(principalKey, resource)));
  }

  /** The store key of a slot's end mark. */
  static endedKey(slot: string): string {
    return `ended:${slot}`;
  }
}
