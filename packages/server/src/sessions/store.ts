/**
 * @module sessions/store
 * Proxy-held sessions: opaque ids, bound to the proxy token that opened them (another token
 * sees "not found"), capped per token and in total, closed when idle and at shutdown.
 */
import { randomBytes } from 'node:crypto';
import { type Clock, SYSTEM_CLOCK } from '../clock.ts';
import { ProxyError } from '../errors.ts';

/** Anything the store can hold and close. */
export interface Closable {
  close(): Promise<void>;
  /** True while work is under way (a call running, a stream open): not idle, whatever the clock says. */
  readonly busy?: boolean;
}

/** Limits for the store. */
export interface SessionStoreOptions {
  readonly idleTimeoutMs: number;
  readonly maxTotal: number;
  readonly maxPerToken: number;
  /** Time and the idle sweep's timer (tests move time instead of waiting); default the system's. */
  readonly clock?: Clock;
  /**
   * Asked before every new session (e.g. a rate limit, under the owner's rate class: the
   * principal opening it says which, no lookup by owner id); throws to refuse.
   */
  readonly admit?: (ownerId: string, rateClass: string | undefined) => Promise<void>;
  /**
   * Whether an owner (proxy token) is still accepted; default: always. Sessions of owners it
   * refuses end at {@link SessionStore.endRevoked} and cannot be opened (issue 14 #3).
   */
  readonly ownerValid?: (ownerId: string) => boolean;
}

interface Entry<S> {
  readonly value: S;
  readonly ownerId: string;
  lastUsed: number;
  /** False for sessions whose life a connection bounds (a WebSocket): never idled out. */
  readonly expires: boolean;
}

/** Options for one session. */
export interface AddOptions {
  /** Close the session after the idle timeout (default true). */
  readonly expires?: boolean;
  /** The owner's rate class (its grants), passed to `admit`. */
  readonly rateClass?: string | undefined;
}

/** Prefix of proxy-issued session ids, so they are never mistaken for an upstream's own. */
export const PROXY_SESSION_PREFIX = 'mcpp-';

/** A bounded map of live sessions, swept for idleness. */
export class SessionStore<S extends Closable> {
  readonly #entries = new Map<string, Entry<S>>();
  readonly #perOwner = new Map<string, number>();
  readonly #options: SessionStoreOptions;
  readonly #now: () => number;
  readonly #stopSweeper: () => void;

  constructor(options: SessionStoreOptions) {
    this.#options = options;
    const clock = options.clock ?? SYSTEM_CLOCK;
    this.#now = () => clock.now();
    const every = Math.max(50, Math.min(30_000, Math.floor(options.idleTimeoutMs / 4)));
    this.#stopSweeper = clock.every(every, () => this.sweep());
  }

  /** Number of open sessions. */
  get size(): number {
    return this.#entries.size;
  }

  /** Reserves a fresh id for `ownerId` and stores what `create` builds; enforces the caps. */
  async add(
    ownerId: string,
    create: (id: string) => Promise<S>,
    options: AddOptions = {},
  ): Promise<{ id: string; value: S }> {
    await this.#claim(ownerId, options.rateClass);
    const id = `${PROXY_SESSION_PREFIX}${randomBytes(18).toString('base64url')}`;
    let value: S;
    try {
      value = await create(id);
    } catch (error) {
      this.#release(ownerId);
      throw error;
    }
    if (this.#options.ownerValid?.(ownerId) === false) {
      // The token was revoked while the upstream handshake ran: what it opened must not outlive it.
      this.#release(ownerId);
      await value.close().catch(() => {});
      throw new ProxyError('unauthorized', 'The proxy token is no longer accepted.');
    }
    this.#entries.set(id, { value, ownerId, lastUsed: this.#now(), expires: options.expires ?? true });
    return { id, value };
  }

  /**
   * Counts an upstream that lives for one call and is never stored (a one-off stdio child of
   * POST /proxy, issue #14.7) against the same caps and admission (rate limit) as a session.
   * Returns the function that gives the slot back; calling it again does nothing.
   */
  async reserve(ownerId: string, rateClass?: string): Promise<() => void> {
    await this.#claim(ownerId, rateClass);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#release(ownerId);
    };
  }

  /** Whether a session with `id` is open (its idle clock untouched). */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** The session with `id` if `ownerId` opened it; refreshes its idle clock. */
  get(id: string, ownerId: string): S | undefined {
    const entry = this.#entries.get(id);
    if (!entry || entry.ownerId !== ownerId) return undefined;
    entry.lastUsed = this.#now();
    return entry.value;
  }

  /** Removes and closes one session. */
  async delete(id: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    // The slot is free only once the upstream is gone: a stdio child may take its kill grace
    // to exit, and until then it still counts against the caps.
    await entry.value
      .close()
      .catch(() => {})
      .finally(() => this.#release(entry.ownerId));
  }

  /** Every open session. */
  values(): IterableIterator<S> {
    return [...this.#entries.values()].map((entry) => entry.value).values();
  }

  /**
   * Ends every session a reload took away: by default those whose owner is no longer valid
   * (its token revoked); `keep` can also judge the session itself (e.g. its target).
   */
  async endRevoked(keep?: (ownerId: string, session: S) => boolean): Promise<void> {
    const valid = this.#options.ownerValid;
    const kept = keep ?? (valid ? (ownerId: string) => valid(ownerId) : undefined);
    if (!kept) return;
    const ended = [...this.#entries]
      .filter(([, entry]) => !kept(entry.ownerId, entry.value))
      .map(([id]) => id);
    await Promise.all(ended.map((id) => this.delete(id)));
  }

  /** Closes sessions idle longer than the timeout. */
  sweep(): void {
    const cutoff = this.#now() - this.#options.idleTimeoutMs;
    for (const [id, entry] of this.#entries) {
      if (!entry.expires || entry.lastUsed > cutoff) continue;
      if (entry.value.busy) entry.lastUsed = this.#now();
      else void this.delete(id);
    }
  }

  /** Closes every session and stops the sweeper (shutdown). */
  async closeAll(): Promise<void> {
    this.#stopSweeper();
    await Promise.all([...this.#entries.keys()].map((id) => this.delete(id)));
  }

  /** Takes one slot for `ownerId`, or throws `session_limit` (caps) / the admission's error. */
  async #claim(ownerId: string, rateClass: string | undefined): Promise<void> {
    this.#checkCapacity(ownerId);
    await this.#options.admit?.(ownerId, rateClass);
    this.#checkCapacity(ownerId);
    // Count the slot before the (slow) upstream handshake so concurrent opens cannot exceed the cap.
    this.#perOwner.set(ownerId, (this.#perOwner.get(ownerId) ?? 0) + 1);
  }

  #checkCapacity(ownerId: string): void {
    let reserved = 0;
    for (const count of this.#perOwner.values()) reserved += count;
    if (reserved >= this.#options.maxTotal) {
      throw new ProxyError('session_limit', 'The proxy has reached its total session limit: retry later.', {
        status: 503,
        data: { limit: this.#options.maxTotal },
      });
    }
    if ((this.#perOwner.get(ownerId) ?? 0) >= this.#options.maxPerToken) {
      throw new ProxyError('session_limit', undefined, { data: { limit: this.#options.maxPerToken } });
    }
  }

  #release(ownerId: string): void {
    const count = (this.#perOwner.get(ownerId) ?? 1) - 1;
    if (count <= 0) this.#perOwner.delete(ownerId);
    else this.#perOwner.set(ownerId, count);
  }
}
