/**
 * @module store/cluster-store
 * The {@link Store} of a worker under `WORKERS=N` without `REDIS_URL` (issue 19): the primary
 * process holds the embedded store (SQLite or memory) and serves it to its workers over the
 * cluster's IPC channel ({@link StoreHost} is the other end). Every worker then shares the same
 * keys, claims, rate counters and channels, so what works across Redis instances (revocations,
 * the vault's locks, session ownership and the relay) works across workers unchanged.
 * A call the primary does not answer within {@link CLUSTER_STORE_TIMEOUT_MS} rejects, a counter's
 * too, as with Redis: its caller decides (limits/store-failures.ts).
 */
import type { WindowHit } from '../limits/rate-store.ts';
import { LocalChannels, type Store, StoreFullError, type StoreListener } from './store.ts';

/** How long one call to the primary may take. */
export const CLUSTER_STORE_TIMEOUT_MS = 5_000;

/** The operations a worker asks of the primary, with their arguments. */
export type StoreOp =
  | 'get'
  | 'set'
  | 'setIfAbsent'
  | 'delete'
  | 'deleteIf'
  | 'replaceIf'
  | 'hit'
  | 'peek'
  | 'publish'
  | 'subscribe'
  | 'unsubscribe';

/** Worker -> primary: one call. The `mcppStore` tag keeps these apart from other IPC traffic. */
export interface StoreCall {
  readonly mcppStore: 'call';
  readonly id: number;
  readonly op: StoreOp;
  readonly args: readonly (string | number | null)[];
}

/** Primary -> worker: the answer to a call, or a message on a channel the worker listens to. */
export type StoreReply =
  | { readonly mcppStore: 'result'; readonly id: number; readonly value: unknown }
  | { readonly mcppStore: 'error'; readonly id: number; readonly name: string; readonly message: string }
  | { readonly mcppStore: 'message'; readonly channel: string; readonly message: string };

/** One end of an IPC channel (a cluster worker's `process`, or the primary's `Worker`). */
export interface IpcPort {
  /** Sends `message`; `done` hears when it has been written to the channel (or could not be). */
  send(message: unknown, done: (error: Error | null) => void): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** Several calls or replies sent at once. */
export interface StoreBatch {
  readonly mcppStore: 'batch';
  readonly items: readonly (StoreCall | StoreReply)[];
}

/** True for a message of this protocol. */
export function isStoreMessage(message: unknown): message is { readonly mcppStore: string } {
  return typeof message === 'object' && message !== null && 'mcppStore' in message;
}

/** The calls or replies a message carries (one, or a batch's items). */
export function storeItems(message: {
  readonly mcppStore: string;
}): readonly { readonly mcppStore: string }[] {
  return message.mcppStore === 'batch' ? (message as StoreBatch).items : [message];
}

/**
 * Bytes a port may have queued and in its IPC channel, not yet written out: the other process
 * reads too slowly beyond (a pub/sub message carries up to a relay part).
 */
export const MAX_PORT_BYTES = 16 * 1_048_576;
/**
 * Items of at most this many bytes (a relay's `ack`, `got`, `cancel`, `fail`) may still go past
 * {@link MAX_PORT_BYTES}, into a reserve of a sixteenth of it: bulk (relay parts) cannot hold
 * back the few words that end or pace an exchange (review 7, RELAY-5).
 */
const SMALL_ITEM_BYTES = 4_096;
/**
 * Calls a worker may have awaiting the primary; one more is refused at once. It bounds the
 * answers the primary may owe a worker, which are therefore never refused (review 7, RELAY-5).
 */
export const MAX_PENDING_CALLS = 10_000;

/** Hears that an item pushed on a {@link PortBatcher} went out (null) or never will. */
export type Sent = (error: Error | null) => void;

/**
 * Sends messages on a port in batches: what is queued while the event loop works through its
 * I/O goes out as one message when it turns (`setImmediate`). An IPC message costs a write and
 * a parse each side, so under load many calls share one instead of each paying for its own.
 * What is queued or not yet written out is bounded in bytes: past the bound an item is refused.
 */
export class PortBatcher {
  readonly #port: IpcPort;
  readonly #maxBytes: number;
  #queue: (StoreCall | StoreReply)[] = [];
  #waiting: Sent[] = [];
  #queuedBytes = 0;
  /** Bytes queued, plus those sent and not yet written out. */
  #bytes = 0;
  #scheduled = false;

  constructor(port: IpcPort, maxBytes = MAX_PORT_BYTES) {
    this.#port = port;
    this.#maxBytes = maxBytes;
  }

  /**
   * Queues `item`; false (and `sent` not called) when the port is past its bound in bytes (a
   * small item: past the reserve beyond it). An answer to a call is always taken: the calling
   * side bounds how many it awaits ({@link MAX_PENDING_CALLS}).
   */
  push(item: StoreCall | StoreReply, sent?: Sent): boolean {
    const bytes = sizeOf(item);
    const answer = item.mcppStore === 'result' || item.mcppStore === 'error';
    const bound = bytes <= SMALL_ITEM_BYTES ? this.#maxBytes + this.#maxBytes / 16 : this.#maxBytes;
    if (!answer && this.#bytes > 0 && this.#bytes + bytes > bound) return false;
    this.#bytes += bytes;
    this.#queuedBytes += bytes;
    this.#queue.push(item);
    if (sent !== undefined) this.#waiting.push(sent);
    if (this.#scheduled) return true;
    this.#scheduled = true;
    setImmediate(() => this.flush());
    return true;
  }

  /** Sends what is queued now; to a channel that is gone, nothing (calls end by their timeout). */
  flush(): void {
    this.#scheduled = false;
    const items = this.#queue;
    if (items.length === 0) return;
    const waiting = this.#waiting;
    const bytes = this.#queuedBytes;
    this.#queue = [];
    this.#waiting = [];
    this.#queuedBytes = 0;
    const done = (error: Error | null) => {
      this.#bytes -= bytes;
      for (const sent of waiting) sent(error);
    };
    try {
      this.#port.send(
        items.length === 1 ? items[0] : ({ mcppStore: 'batch', items } satisfies StoreBatch),
        done,
      );
    } catch (error) {
      // The other process exited: the cluster ends or replaces this side too.
      done(error as Error);
    }
  }
}

/** About how many bytes `item` takes in the channel (its strings: what can be large). */
function sizeOf(item: StoreCall | StoreReply): number {
  if (item.mcppStore === 'message') return item.channel.length + item.message.length;
  if (item.mcppStore === 'call')
    return item.args.reduce<number>((sum, arg) => sum + (typeof arg === 'string' ? arg.length : 8), 64);
  return item.mcppStore === 'result' && typeof item.value === 'string' ? item.value.length + 64 : 64;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** The shared store, reached through the primary. */
export class ClusterStore implements Store {
  readonly #port: IpcPort;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #channels = new LocalChannels();
  readonly #listener = (message: unknown) => this.#receive(message);
  readonly #out: PortBatcher;
  #nextId = 0;
  #closed = false;

  /** @param port the IPC channel to the primary (`process` in a worker). */
  constructor(port: IpcPort, timeoutMs = CLUSTER_STORE_TIMEOUT_MS) {
    this.#port = port;
    this.#timeoutMs = timeoutMs;
    this.#out = new PortBatcher(port);
    port.on('message', this.#listener);
  }

  async get(key: string): Promise<string | undefined> {
    return ((await this.#call('get', [key])) as string | null) ?? undefined;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.#call('set', [key, value, ttlMs ?? null]);
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    return (await this.#call('setIfAbsent', [key, value, ttlMs ?? null])) === true;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#call('delete', [key])) === true;
  }

  async deleteIf(key: string, value: string): Promise<boolean> {
    return (await this.#call('deleteIf', [key, value])) === true;
  }

  async replaceIf(key: string, expected: string, value: string, ttlMs?: number): Promise<boolean> {
    return (await this.#call('replaceIf', [key, expected, value, ttlMs ?? null])) === true;
  }

  async hit(key: string, windowMs: number): Promise<WindowHit> {
    return (await this.#call('hit', [key, windowMs])) as WindowHit;
  }

  async peek(key: string): Promise<WindowHit | undefined> {
    return ((await this.#call('peek', [key])) as WindowHit | null) ?? undefined;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#call('publish', [channel, message]);
  }

  async subscribe(channel: string, listener: StoreListener): Promise<() => Promise<void>> {
    if (this.#channels.add(channel, listener)) {
      try {
        await this.#call('subscribe', [channel]);
      } catch (error) {
        this.#channels.remove(channel, listener);
        throw error;
      }
    }
    return async () => {
      if (this.#channels.remove(channel, listener) && !this.#closed)
        await this.#call('unsubscribe', [channel]).catch(() => {});
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // The primary forgets this worker's channels when it goes; a worker closing its store while
    // it lives (a test) says so itself.
    for (const channel of this.#channels.channels())
      await this.#call('unsubscribe', [channel]).catch(() => {});
    this.#closed = true;
    this.#channels.clear();
    this.#port.off('message', this.#listener);
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error('the store is closed'));
      this.#pending.delete(id);
    }
  }

  #call(op: StoreOp, args: readonly (string | number | null)[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    if (this.#pending.size >= MAX_PENDING_CALLS)
      return Promise.reject(new Error('too many store calls await the primary process'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`the primary process did not answer a store call within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer });
      // A send that fails (the primary is gone, and the cluster ends this worker too) leaves the
      // call to its timeout.
      if (this.#out.push({ mcppStore: 'call', id, op, args } satisfies StoreCall)) return;
      clearTimeout(timer);
      this.#pending.delete(id);
      reject(new Error('the channel to the primary process is full'));
    });
  }

  #receive(raw: unknown): void {
    if (!isStoreMessage(raw)) return;
    for (const item of storeItems(raw)) this.#receiveOne(item as StoreReply);
  }

  #receiveOne(reply: StoreReply): void {
    if (reply.mcppStore === 'message') {
      this.#channels.deliver(reply.channel, reply.message);
      return;
    }
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.mcppStore === 'result') pending.resolve(reply.value);
    else
      pending.reject(
        reply.name === 'StoreFullError' ? new StoreFullError(reply.message) : new Error(reply.message),
      );
  }
}
