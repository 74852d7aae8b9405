/**
 * @module credentials/vault
 * Upstream tokens at rest (issue 18): one entry per (principal, resource), encrypted with
 * AES-256-GCM ({@link seal}) in the shared store, so the sqlite file or Redis never holds a token in
 * clear and several instances share what a user connected. The slot name is a hash: the store
 * does not even learn who connected to what.
 *
 * A disconnect leaves a sealed tombstone in the entry's slot (review7 CREDS-4): what still holds
 * the ended token learns of the end from the same key the token lived in, so no store eviction
 * can drop the end while keeping the entry. A deletion (a refused refresh) leaves the slot empty:
 * "sign in again", not "ended".
 */
import { randomBytes } from 'node:crypto';
import { parseJsonObject } from '../json-object.ts';
import { open, seal } from '../store/sealed-box.ts';
import { type Store, StoreFullError } from '../store/store.ts';
import type { VaultKeys } from '../store/vault-keys.ts';
import { digest } from './hashed-secrets.ts';

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

/** What a disconnect leaves in the slot: the end's random mark. */
interface Tombstone {
  readonly ended: string;
}

/** What a slot holds once opened: an entry, a tombstone, or nothing readable. */
type SlotContent = { entry: VaultEntry; sealed: string } | { tombstone: Tombstone } | undefined;

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
    return digest(`${principalKey}\n${resource}`);
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
    const content = await this.#content(TokenVault.slot(principalKey, resource));
    return content !== undefined && 'entry' in content ? content : undefined;
  }

  /** The slot opened: an entry (an object with an access token), a tombstone, or undefined. */
  async #content(slot: string): Promise<SlotContent> {
    const sealed = await this.#store.get(slot);
    if (sealed === undefined) return undefined;
    const plain = open(this.#keys, slot, sealed);
    if (plain === undefined) return undefined;
    const parsed = parseJsonObject(plain);
    if (parsed === undefined) return undefined;
    if ('accessToken' in parsed && typeof parsed.accessToken === 'string') {
      return { entry: parsed as VaultEntry, sealed };
    }
    if ('ended' in parsed && typeof parsed.ended === 'string') return { tombstone: { ended: parsed.ended } };
    return undefined;
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

  /**
   * Ends (principal, resource) — a disconnect or an eviction — with a new random mark, put in
   * place of the entry (a sealed tombstone) and under the slot's own end key. What still holds a
   * token of that connection (an open `/ws` socket, a WebSocket upstream that authenticated once
   * at its handshake) compares the mark it read when it opened with the current one and ends when
   * they differ (review oauth6 R1): deleting the vault entry alone never reaches a token already
   * handed out. The end key outlives a new sign-in (which replaces the tombstone); the tombstone
   * outlives an eviction of the end key (CREDS-4). Both live as long as a vault entry may.
   */
  async end(principalKey: string, resource: string): Promise<void> {
    const slot = TokenVault.slot(principalKey, resource);
    const mark = randomBytes(12).toString('base64url');
    const tombstone: Tombstone = { ended: mark };
    await this.#store.set(slot, seal(this.#keys, slot, JSON.stringify(tombstone)), KEEP_WITH_REFRESH_MS);
    try {
      await this.#store.set(TokenVault.endedKey(slot), mark, KEEP_WITH_REFRESH_MS);
    } catch (error) {
      // A full memory store refuses a new key; the tombstone (an existing key) already ends it.
      if (!(error instanceof StoreFullError)) throw error;
    }
  }

  /**
   * The current end mark of (principal, resource) ({@link end}); undefined: never ended. The end
   * key first (it holds the latest end, also after a new sign-in), else the slot's tombstone.
   */
  async endMark(principalKey: string, resource: string): Promise<string | undefined> {
    const slot = TokenVault.slot(principalKey, resource);
    const mark = await this.#store.get(TokenVault.endedKey(slot));
    if (mark !== undefined) return mark;
    const content = await this.#content(slot);
    return content !== undefined && 'tombstone' in content ? content.tombstone.ended : undefined;
  }

  /** The store key of a slot's end mark. */
  static endedKey(slot: string): string {
    return `ended:${slot}`;
  }
}
