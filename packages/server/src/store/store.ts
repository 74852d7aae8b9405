/**
 * @module store/store
 * One interface for state the proxy keeps beyond a request (issue 17, and the base of 18 and 19):
 * string values under namespaced keys with TTLs, one-time claims and locks, fixed-window
 * counters (rate limits), and pub/sub between instances. Three implementations: memory (tests,
 * `STORE=memory`), `node:sqlite` under `DATA_DIR` (the embedded default) and Redis (`REDIS_URL`).
 * A new use (revocations, the OAuth vault, session ownership) takes a {@link namespaced} view.
 */
import { ProxyError } from '../errors.ts';
import type { RateStore, WindowHit } from '../limits/rate-store.ts';

/** Called with each message published on a subscribed channel. */
export type StoreListener = (message: string) => void;

/**
 * Called when a subscription is back after its connection dropped (Redis): messages published
 * in between were never delivered, so a listener that keeps state re-reads what it relies on.
 * `awayMs`: how long before this call the subscriber was lost (its connection closed).
 */
export type MissedListener = (awayMs: number) => void;

/** Shared state. Keys and channels are plain strings; values are strings (JSON by convention). */
export interface Store extends RateStore {
  /** The value under `key`, `undefined` when absent or expired. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value`; with `ttlMs` it disappears after that long (a heartbeat re-sets it). */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Stores `value` only if `key` holds nothing live: locks and one-time claims. True if stored. */
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean>;
  /** Removes `key`; true if it held a live value. */
  delete(key: string): Promise<boolean>;
  /** Removes `key` only while it still holds `value` (releasing one's own lock). */
  deleteIf(key: string, value: string): Promise<boolean>;
  /**
   * Stores `value` only while `key` still holds `expected` (compare-and-set): a writer that read
   * a value and lost to another writer since stores nothing. True if stored.
   */
  replaceIf(key: string, expected: string, value: string, ttlMs?: number): Promise<boolean>;
  /** Sends `message` to every subscriber of `channel`, in this process and (Redis) others. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Listens on `channel`; resolves once subscribed, to a function that stops listening. `missed`
   * hears that the subscription was down and is listening again (only Redis loses messages).
   */
  subscribe(channel: string, listener: StoreListener, missed?: MissedListener): Promise<() => Promise<void>>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/**
 * A bounded store with no room left for a new key: it never drops a live one to make room (a
 * dropped revocation would make a revoked token valid again), so the write is refused.
 */
export class StoreFullError extends Error {
  constructor(message = 'the store is full') {
    super(message);
    this.name = 'StoreFullError';
  }
}

/** The error a caller sees when the shared store failed it: `store_full`, else `store_unavailable`. */
export function storeFailure(cause: unknown): ProxyError {
  return new ProxyError(cause instanceof StoreFullError ? 'store_full' : 'store_unavailable', undefined, {
    cause,
  });
}

/** Reads `key`; a store that cannot answer is the caller's `store_unavailable`. */
export async function readOrRefuse(store: Pick<Store, 'get'>, key: string): Promise<string | undefined> {
  try {
    return await store.get(key);
  } catch (error) {
    throw storeFailure(error);
  }
}

/** Which implementation a store is, for logs and tests. */
export type StoreKind = 'memory' | 'sqlite' | 'redis';

/**
 * A view of `store` under `prefix` (e.g. `revoked:`): keys and channels get the prefix, so uses
 * never collide. Closing the view leaves the store open: its owner closes it.
 */
export function namespaced(store: Store, prefix: string): Store {
  return {
    get: (key) => store.get(prefix + key),
    set: (key, value, ttlMs) => store.set(prefix + key, value, ttlMs),
    setIfAbsent: (key, value, ttlMs) => store.setIfAbsent(prefix + key, value, ttlMs),
    delete: (key) => store.delete(prefix + key),
    deleteIf: (key, value) => store.deleteIf(prefix + key, value),
    replaceIf: (key, expected, value, ttlMs) => store.replaceIf(prefix + key, expected, value, ttlMs),
    hit: (key, windowMs) => store.hit(prefix + key, windowMs),
    peek: (key) => store.peek(prefix + key),
    // Counters kept in this process stay synchronous through the view.
    hitNow: store.hitNow && ((key, windowMs) => store.hitNow?.(prefix + key, windowMs) as WindowHit),
    peekNow: store.peekNow && ((key) => store.peekNow?.(prefix + key)),
    publish: (channel, message) => store.publish(prefix + channel, message),
    subscribe: (channel, listener, missed) => store.subscribe(prefix + channel, listener, missed),
    close: async () => {},
  };
}

/** Subscribers of one process, by channel: the local half of pub/sub for every implementation. */
export class LocalChannels {
  readonly #listeners = new Map<string, Set<StoreListener>>();

  /** Delivers `message` to this process's listeners, each on its own tick (a throw stays local). */
  deliver(channel: string, message: string): void {
    for (const listener of this.#listeners.get(channel) ?? []) {
      queueMicrotask(() => {
        try {
          listener(message);
        } catch {
          // A listener's fault is its own; the others still hear the message.
        }
      });
    }
  }

  /** Adds a listener; returns whether it is the channel's first (Redis then subscribes). */
  add(channel: string, listener: StoreListener): boolean {
    let set = this.#listeners.get(channel);
    const first = set === undefined;
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
    }
    set.add(listener);
    return first;
  }

  /** Removes a listener; returns whether the channel has none left. */
  remove(channel: string, listener: StoreListener): boolean {
    const set = this.#listeners.get(channel);
    if (!set) return false;
    set.delete(listener);
    if (set.size > 0) return false;
    this.#listeners.delete(channel);
    return true;
  }

  /** The channels that have listeners. */
  channels(): string[] {
    return [...this.#listeners.keys()];
  }

  clear(): void {
    this.#listeners.clear();
  }
}
