/**
 * @module identity/revocations
 * Revoked minted tokens, by `jti` (issue 17): kept in the shared store until the token would have
 * expired, announced on the store's `revoked` channel so every instance ends what the token holds
 * and drops it from its verified-token cache, and remembered locally so a cached token's check
 * costs a map lookup, not a store round trip.
 */
import { parseJsonObject } from '../json-object.ts';
import { readOrRefuse, type Store, storeFailure } from '../store/store.ts';

/** Channel on which revocations are announced. */
const CHANNEL = 'revoked';
/**
 * Most revocations remembered locally; past it expired ones go, then the oldest (the store still
 * has them, and a token not cached is checked against the store).
 */
const LOCAL_MAX = 100_000;

/** Heard about every revocation, local or announced by another instance. */
export type RevocationListener = (credentialId: string) => void;

/** Hears that announcements may have been missed: what relies on them is checked again. */
export type ResyncListener = () => void;

/** Revocations in the shared store (pass a `revoked:` namespace of it). */
export class Revocations {
  readonly #store: Store;
  readonly #now: () => number;
  /** jti → when the entry may be forgotten (the token's expiry). */
  readonly #local = new Map<string, number>();
  readonly #listeners = new Set<RevocationListener>();
  readonly #resync = new Set<ResyncListener>();
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** Listens for revocations made on other instances. */
  async start(): Promise<void> {
    this.#unsubscribe = await this.#store.subscribe(
      CHANNEL,
      (message) => {
        const parsed = parse(message);
        if (parsed) this.#remember(parsed.id, parsed.until);
      },
      () => {
        for (const listener of this.#resync) listener();
      },
    );
  }

  /**
   * Calls `listener` when revocations made elsewhere may have gone unheard (the subscription
   * was down and is back): verified tokens must be checked against the store again.
   */
  onResync(listener: ResyncListener): void {
    this.#resync.add(listener);
  }

  /** Calls `listener` with every revoked id (to end sockets, sessions, cache entries). */
  onRevoked(listener: RevocationListener): void {
    this.#listeners.add(listener);
  }

  /** Revokes `id` until `until` (ms since the epoch): recorded, announced, acted on here. */
  async revoke(id: string, until: number): Promise<void> {
    const ttlMs = Math.max(1_000, until - this.#now());
    try {
      await this.#store.set(id, '1', ttlMs);
    } catch (error) {
      throw storeFailure(error);
    }
    this.#remember(id, until);
    // Other instances hear it; a store that fails to announce still holds the record, which
    // every instance reads before trusting a token it has not cached.
    await this.#store.publish(CHANNEL, JSON.stringify({ id, until })).catch(() => {});
  }

  /** Whether this instance already knows `id` is revoked (no store round trip). */
  knownRevoked(id: string): boolean {
    const until = this.#local.get(id);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#local.delete(id);
    return false;
  }

  /** Whether `id` is revoked, asking the store when this instance does not know. */
  async isRevoked(id: string): Promise<boolean> {
    if (this.knownRevoked(id)) return true;
    return (await readOrRefuse(this.#store, id)) !== undefined;
  }

  /**
   * Asks the store whether `id` is revoked, even if this instance has not heard so; a revocation
   * found there is acted on as an announced one (listeners hear it). `until`: the token's expiry.
   */
  async confirm(id: string, until: number): Promise<boolean> {
    if (this.knownRevoked(id)) return true;
    if ((await readOrRefuse(this.#store, id)) === undefined) return false;
    this.#remember(id, until);
    return true;
  }

  async close(): Promise<void> {
    await this.#unsubscribe?.();
  }

  #remember(id: string, until: number): void {
    const fresh = !this.knownRevoked(id);
    this.#local.delete(id);
    if (this.#local.size >= LOCAL_MAX) {
      const now = this.#now();
      for (const [key, expires] of this.#local) if (expires <= now) this.#local.delete(key);
      for (const key of this.#local.keys()) {
        if (this.#local.size < LOCAL_MAX * 0.9) break;
        this.#local.delete(key);
      }
    }
    this.#local.set(id, until);
    if (!fresh) return;
    for (const listener of this.#listeners) listener(id);
  }
}

function parse(message: string): { id: string; until: number } | undefined {
  const value = parseJsonObject(message) as { id?: unknown; until?: unknown } | undefined;
  // Not ours: ignored.
  if (typeof value?.id !== 'string' || typeof value.until !== 'number') return undefined;
  return { id: value.id, until: value.until };
}
