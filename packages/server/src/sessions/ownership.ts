/**
 * @module sessions/ownership
 * Which instance holds a proxy-held session (issue 19). The instance holding a session's
 * upstream connection owns it; the store says so under `session:<id>` → instance id. Each
 * instance keeps `alive:<instance id>` alive with a short heartbeat TTL: a session whose owner's
 * key has expired (the owner was killed) is nobody's, so it answers "not found" at once (the
 * spec's signal to start again) instead of waiting on an owner that will never answer. Ownership
 * keys carry a long TTL of their own, renewed while the session lives, so a dead instance's keys
 * go away by themselves. `requestState` handles carry their instance in the handle itself
 * (eras/input-rounds.ts): they live for one input round, and a store write each would race the
 * client's retry.
 */
import type { Store } from '../store/store.ts';
import { newInstanceId } from './instance-id.ts';

/** Timing of the heartbeat and of the keys. */
export interface OwnershipTiming {
  /** How often the instance says it is alive (and looks at the instances it watches). */
  readonly heartbeatMs: number;
  /** How long `alive:<id>` outlives the last heartbeat: an owner killed is gone after this. */
  readonly aliveTtlMs: number;
  /** TTL of a session's ownership key, renewed at a third of it while the session lives. */
  readonly claimTtlMs: number;
}

/** The defaults: an owner killed with SIGKILL is known gone within 5 s. */
export const OWNERSHIP_TIMING: OwnershipTiming = {
  heartbeatMs: 1_500,
  aliveTtlMs: 5_000,
  claimTtlMs: 30 * 60_000,
};

/** What ownership needs. */
export interface OwnershipDeps {
  /** A namespaced view of the shared store. */
  readonly store: Store;
  /** Whether this instance still holds session `id` (its session store). */
  readonly holdsLocally: (id: string) => boolean;
  /** Hears store failures (throttled by the caller). */
  readonly onError: (error: Error) => void;
  readonly timing?: OwnershipTiming;
  /** This instance's id (default: random). Visible ASCII without `.`. */
  readonly instanceId?: string;
}

/** Registers this instance's sessions and answers who owns another's. */
export class SessionOwnership {
  /** This instance, in the store and in `requestState` handles. */
  readonly instanceId: string;
  readonly #deps: OwnershipDeps;
  readonly #timing: OwnershipTiming;
  /** Sessions claimed here → when their key was last written. */
  readonly #claimed = new Map<string, number>();
  /** Other instances watched (an exchange relayed to or from them) → who hears they are gone. */
  readonly #watched = new Map<string, Set<() => void>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #ticking = false;
  #started = false;
  /** The store may have lost every key (see {@link SessionOwnership.resync}): claim all again. */
  #lost = false;

  constructor(deps: OwnershipDeps) {
    this.#deps = deps;
    this.#timing = deps.timing ?? OWNERSHIP_TIMING;
    this.instanceId = deps.instanceId ?? newInstanceId();
  }

  /** Says this instance is alive, then keeps saying it (a store down now hears it later). */
  async start(): Promise<void> {
    this.#started = true;
    this.#timer = setInterval(() => void this.#tick(), this.#timing.heartbeatMs);
    this.#timer.unref();
    await this.#beat().catch((error: Error) => this.#deps.onError(error));
  }

  /**
   * Records that this instance owns session `id` (before its id reaches the caller); undefined
   * when it was recorded before (no promise on every request of a session).
   */
  claim(id: string): Promise<void> | undefined {
    if (this.#claimed.has(id)) return undefined;
    this.#claimed.set(id, Date.now());
    return this.#deps.store.set(`session:${id}`, this.instanceId, this.#timing.claimTtlMs).catch((error) => {
      // Not recorded: the session's next answer tries again.
      this.#claimed.delete(id);
      throw error;
    });
  }

  /**
   * The store may have lost its keys (a Redis restarted without persistence: its subscriptions
   * came back with messages missed): the next heartbeat writes every claim again, rather than
   * each in up to a third of its TTL, while other instances answer its sessions "not found".
   */
  resync(): void {
    this.#lost = true;
  }

  /** Whether this instance holds session `id` (no store round trip). */
  holds(id: string): boolean {
    return this.#deps.holdsLocally(id);
  }

  /** The live instance that owns session `id`, if another one does; undefined otherwise. */
  async ownerOf(id: string): Promise<string | undefined> {
    const owner = await this.#deps.store.get(`session:${id}`);
    if (owner === undefined || owner === this.instanceId) return undefined;
    return (await this.alive(owner)) ? owner : undefined;
  }

  /** Whether `instanceId`'s heartbeat is current. */
  async alive(instanceId: string): Promise<boolean> {
    if (instanceId === this.instanceId) return !this.#closed;
    return (await this.#deps.store.get(`alive:${instanceId}`)) !== undefined;
  }

  /**
   * Calls `onGone` once `instanceId`'s heartbeat has expired (checked each heartbeat). Returns
   * the function that stops watching.
   */
  watch(instanceId: string, onGone: () => void): () => void {
    let listeners = this.#watched.get(instanceId);
    if (!listeners) {
      listeners = new Set();
      this.#watched.set(instanceId, listeners);
    }
    listeners.add(onGone);
    return () => {
      const set = this.#watched.get(instanceId);
      if (!set) return;
      set.delete(onGone);
      if (set.size === 0) this.#watched.delete(instanceId);
    };
  }

  /**
   * Stops the heartbeat and removes this instance's keys at once (a drain or a shutdown): other
   * instances answer its sessions "not found" from now on instead of relaying to it.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (!this.#started) return;
    this.#watched.clear();
    const { store } = this.#deps;
    const ids = [...this.#claimed.keys()];
    this.#claimed.clear();
    await Promise.allSettled([
      store.deleteIf(`alive:${this.instanceId}`, '1'),
      ...ids.map((id) => store.deleteIf(`session:${id}`, this.instanceId)),
    ]);
  }

  async #beat(): Promise<void> {
    await this.#deps.store.set(`alive:${this.instanceId}`, '1', this.#timing.aliveTtlMs);
  }

  /** One heartbeat: alive, renew or drop claims, look at the watched instances. */
  async #tick(): Promise<void> {
    // A store slower than the heartbeat must not pile ticks up.
    if (this.#closed || this.#ticking) return;
    this.#ticking = true;
    try {
      await this.#beatOnce();
    } finally {
      this.#ticking = false;
    }
  }

  async #beatOnce(): Promise<void> {
    const { store, onError } = this.#deps;
    // Its own alive key gone before its TTL means the store lost its keys (or this process
    // stalled past the TTL): the claims may be gone too.
    try {
      if (await store.setIfAbsent(`alive:${this.instanceId}`, '1', this.#timing.aliveTtlMs))
        this.#lost = true;
    } catch (error) {
      onError(error as Error);
    }
    const lost = this.#lost;
    this.#lost = false;
    const now = Date.now();
    const writes: Promise<unknown>[] = [this.#beat()];
    for (const [id, written] of this.#claimed) {
      if (!this.#deps.holdsLocally(id)) {
        // The session ended here: requests for it elsewhere stop being relayed to this instance.
        this.#claimed.delete(id);
        writes.push(store.deleteIf(`session:${id}`, this.instanceId));
      } else if (lost || now - written > this.#timing.claimTtlMs / 3) {
        this.#claimed.set(id, now);
        const write = store.set(`session:${id}`, this.instanceId, this.#timing.claimTtlMs);
        // A rewrite after a loss that fails is tried again at the next heartbeat.
        writes.push(
          lost
            ? write.catch((error: unknown) => {
                this.#lost = true;
                throw error;
              })
            : write,
        );
      }
    }
    for (const result of await Promise.allSettled(writes))
      if (result.status === 'rejected') onError(result.reason as Error);
    await Promise.all(
      [...this.#watched.keys()].map(async (instanceId) => {
        let alive: boolean;
        try {
          alive = await this.alive(instanceId);
        } catch (error) {
          // A store that does not answer says nothing about the other instance.
          onError(error as Error);
          return;
        }
        if (alive) return;
        const listeners = this.#watched.get(instanceId);
        this.#watched.delete(instanceId);
        for (const onGone of listeners ?? []) onGone();
      }),
    );
  }
}
