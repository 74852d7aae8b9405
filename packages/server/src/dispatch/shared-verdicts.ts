/**
 * @module dispatch/shared-verdicts
 * What one instance learnt of an upstream (its transport, its eras), shared with every other
 * instance through the store (issue 19), so N instances probe an upstream once, not N times, and
 * agree on what it speaks. A read never waits on the store: the local {@link TtlCache} answers
 * first; a learnt verdict is written through to the store (with the cache's lifetime) and
 * announced on a channel, so the other instances fill their caches as they hear it; only a local
 * miss, on a path that is about to probe anyway, asks the store ({@link SharedVerdicts.recall}).
 *
 * The store holds untrusted input: keys are hashes of the upstream key (a URL may carry a secret
 * in its query), values are validated, and a failing store never fails a request (the caller
 * probes, as it would with no store at all). With `SESSION_SECRET` ({@link SharedVerdictOptions.seal})
 * whoever can write to the store is not trusted either: stored values and announcements are
 * sealed for their key or channel (one that does not open is not heard), and keys are HMACs, so
 * neither a forged verdict steers an instance nor a key name lets a URL's secret be guessed
 * offline. Without it the store is trusted (docs/security.md).
 */
import { createHash } from 'node:crypto';
import type { PurposeSeal } from '../store/purpose-seal.ts';
import type { Store } from '../store/store.ts';
import { TtlCache, type TtlCacheOptions } from '../ttl-cache.ts';

/** How long a local miss waits for the store before probing instead. */
const RECALL_TIMEOUT_MS = 500;
/** How long a store that failed is left alone for a key (probing goes on meanwhile). */
const FAILED_RECALL_TTL_MS = 5_000;
/** Announcements and stored values longer than this are not ours. */
const MAX_MESSAGE_CHARS = 1_024;

/** Where and how verdicts of one kind are shared. */
export interface SharedVerdictOptions<V> extends TtlCacheOptions {
  /** The store (a namespaced view) to share through; absent: this process only. */
  readonly store?: Store | undefined;
  /** Which verdicts (`transport`, `era`): the store key's prefix and the channel's name. */
  readonly kind: string;
  /** Validates a verdict read from the store or heard on the channel (untrusted input). */
  readonly parse: (value: unknown) => V | undefined;
  /** Combines a verdict heard with what this instance knows of the same upstream. */
  readonly merge?: ((mine: V | undefined, theirs: V) => V) | undefined;
  /** Hears the store failing (throttle it: it repeats while the store is down). */
  readonly onError?: ((error: Error) => void) | undefined;
  /** Seals and names what is shared (`SESSION_SECRET` set); absent: plain JSON under SHA-256 names. */
  readonly seal?: PurposeSeal | undefined;
}

/** One key's local entry: its hash (the store's key) and what is known (`undefined`: nothing). */
interface Slot<V> {
  readonly hash: string;
  readonly value: V | undefined;
}

/** A verdict as stored and announced: the value and when it expires (ms since the epoch). */
interface Shared<V> {
  readonly value: V;
  readonly until: number;
}

/** Verdicts of one kind, by upstream key: local first, the store behind. */
export class SharedVerdicts<V> {
  readonly #options: SharedVerdictOptions<V>;
  readonly #now: () => number;
  /** Raw key → what is known; a slot without a value says the store had nothing either. */
  readonly #local: TtlCache<string, Slot<V>>;
  /** Hash → raw key of every local slot, so an announcement reaches the slot it is about. */
  readonly #keys: TtlCache<string, string>;
  /** Announced verdicts of keys this instance has not looked at yet, by hash. */
  readonly #heard: TtlCache<string, Shared<V>>;
  readonly #recalls = new Map<string, Promise<V | undefined>>();
  /** The subscription to other instances' announcements, once made (or undefined: failed). */
  #subscribing: Promise<(() => Promise<void>) | undefined> | undefined;
  /** Undoes the subscription, once it is made. */
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(options: SharedVerdictOptions<V>) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#local = new TtlCache(options);
    this.#keys = new TtlCache(options);
    this.#heard = new TtlCache(options);
  }

  /**
   * Listens for verdicts other instances learn. Resolves at once: a store that cannot be reached
   * (its subscription waits for the connection) must not hold up the start, since unheard
   * announcements cost probes, never requests.
   */
  async listen(): Promise<void> {
    const { store, kind } = this.#options;
    if (!store) return;
    this.#subscribing = store
      .subscribe(
        kind,
        (message) => this.#hear(message),
        // Announcements were lost while the subscription was down: start again from the store.
        () => this.#local.clear(),
      )
      .then(
        (unsubscribe) => {
          // What was announced before the subscription was made went unheard: ask the store again.
          this.#local.clear();
          this.#unsubscribe = unsubscribe;
          return unsubscribe;
        },
        (error: unknown) => {
          this.#options.onError?.(error as Error);
          return undefined;
        },
      );
  }

  async close(): Promise<void> {
    const { onError } = this.#options;
    const subscribing = this.#subscribing;
    const made = this.#unsubscribe;
    this.#subscribing = undefined;
    this.#unsubscribe = undefined;
    if (made !== undefined) {
      await made().catch((error: unknown) => onError?.(error as Error));
      return;
    }
    // A subscription still waiting for its connection is undone once it is made (the store's
    // close ends the wait first).
    void subscribing
      ?.then((unsubscribe) => unsubscribe?.())
      .catch((error: unknown) => onError?.(error as Error));
  }

  /** What is known of `key` here, without asking the store. */
  get(key: string): V | undefined {
    const slot = this.#local.get(key);
    if (slot !== undefined) return slot.value;
    // Hashing costs only while announcements of keys not looked at yet are waiting.
    if (this.#heard.size === 0) return undefined;
    const hash = this.#name(key);
    const heard = this.#heard.get(hash);
    if (heard === undefined) return undefined;
    this.#heard.delete(hash);
    this.#keep(key, hash, heard.value, heard.until - this.#now());
    return heard.value;
  }

  /** Whether {@link recall} could learn more of `key` than {@link get} knows (a store to ask). */
  mayRecall(key: string): boolean {
    return (
      this.#options.store !== undefined && this.get(key) === undefined && this.#local.get(key) === undefined
    );
  }

  /**
   * What is known of `key`, asking the store on a local miss (once per key at a time, bounded in
   * time). A store with nothing, or one that failed, is remembered as a miss for a while.
   */
  recall(key: string): Promise<V | undefined> {
    if (!this.mayRecall(key)) return Promise.resolve(this.get(key));
    let recall = this.#recalls.get(key);
    if (!recall) {
      recall = this.#read(key).finally(() => this.#recalls.delete(key));
      this.#recalls.set(key, recall);
    }
    return recall;
  }

  /** Records what `key` was found to speak; a change is written through and announced. */
  set(key: string, value: V): void {
    const slot = this.#local.get(key);
    const hash = slot?.hash ?? this.#name(key);
    this.#keep(key, hash, value, this.#options.ttlMs);
    if (slot?.value !== undefined && JSON.stringify(slot.value) === JSON.stringify(value)) return;
    void this.#share(hash, value);
  }

  async #share(hash: string, value: V): Promise<void> {
    const { store, kind, ttlMs } = this.#options;
    if (!store) return;
    const until = this.#now() + ttlMs;
    try {
      const slot = `${kind}:${hash}`;
      await store.set(slot, this.#wrap(slot, JSON.stringify({ value, until })), ttlMs);
      await store.publish(kind, this.#wrap(kind, JSON.stringify({ hash, value, until })));
    } catch (error) {
      this.#options.onError?.(error as Error);
    }
  }

  async #read(key: string): Promise<V | undefined> {
    const { store, kind } = this.#options;
    const hash = this.#name(key);
    const slot = `${kind}:${hash}`;
    let timer: NodeJS.Timeout | undefined;
    try {
      const text = await Promise.race([
        (store as Store).get(slot),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('the store did not answer in time')), RECALL_TIMEOUT_MS);
          timer.unref();
        }),
      ]);
      const shared = text === undefined ? undefined : this.#parse(slot, text);
      // A verdict learnt meanwhile (here, or heard) wins over what the store had.
      const now = this.get(key);
      if (now !== undefined) return now;
      if (shared === undefined) {
        this.#keep(key, hash, undefined, this.#options.ttlMs);
        return undefined;
      }
      this.#keep(key, hash, shared.value, shared.until - this.#now());
      return shared.value;
    } catch (error) {
      this.#options.onError?.(error as Error);
      this.#keep(key, hash, undefined, FAILED_RECALL_TTL_MS);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  #hear(message: string): void {
    const parsed = this.#parse(this.#options.kind, message);
    const hash = parsed?.hash;
    if (parsed === undefined || typeof hash !== 'string' || !HASH.test(hash)) return;
    const key = this.#keys.get(hash);
    const slot = key === undefined ? undefined : this.#local.get(key);
    if (key === undefined || slot === undefined) {
      this.#heard.set(hash, parsed, parsed.until - this.#now());
      return;
    }
    const value = this.#options.merge ? this.#options.merge(slot.value, parsed.value) : parsed.value;
    this.#keep(key, hash, value, parsed.until - this.#now());
  }

  /**
   * A verdict stored under `slot` or announced on it (the channel), validated; undefined when
   * malformed, expired, or (with a seal) not sealed for `slot` by an instance.
   */
  #parse(slot: string, text: string): (Shared<V> & { readonly hash: unknown }) | undefined {
    if (text.length > MAX_MESSAGE_CHARS) return undefined;
    const { seal } = this.#options;
    const plain = seal === undefined ? text : seal.open(slot, text)?.toString('utf8');
    if (plain === undefined) return undefined;
    let raw: { value?: unknown; until?: unknown; hash?: unknown };
    try {
      raw = JSON.parse(plain) as typeof raw;
    } catch {
      return undefined;
    }
    if (typeof raw !== 'object' || raw === null || typeof raw.until !== 'number') return undefined;
    // Expired by this instance's clock (the local cache also caps what is left at its own TTL).
    if (raw.until <= this.#now()) return undefined;
    const value = this.#options.parse(raw.value);
    return value === undefined ? undefined : { value, until: raw.until, hash: raw.hash };
  }

  /** What is written under `slot` (a store key or the channel): `json`, sealed when there is a seal. */
  #wrap(slot: string, json: string): string {
    const { seal } = this.#options;
    return seal === undefined ? json : seal.seal(slot, Buffer.from(json, 'utf8'));
  }

  /** The store's name for `key`: keyed (HMAC) with a seal, else its SHA-256; no URL is written. */
  #name(key: string): string {
    const { seal } = this.#options;
    return seal === undefined ? createHash('sha256').update(key).digest('base64url') : seal.name(key);
  }

  #keep(key: string, hash: string, value: V | undefined, ttlMs: number): void {
    this.#local.set(key, { hash, value }, ttlMs);
    this.#keys.set(hash, key, ttlMs);
  }
}

/** What a key's name looks like (base64url SHA-256 or HMAC-SHA-256). */
const HASH = /^[A-Za-z0-9_-]{43}$/;
