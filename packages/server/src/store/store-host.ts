/**
 * @module store/store-host
 * The primary's half of {@link ClusterStore} (issue 19, `WORKERS=N` without `REDIS_URL`): it
 * answers its workers' store calls from the one embedded store it holds, and carries pub/sub
 * between them (a message published by one worker reaches every worker listening, itself too).
 * The primary loads no Fastify: this file and the store are all it needs of the server.
 */
import { type IpcPort, isStoreMessage, PortBatcher, type StoreCall, storeItems } from './cluster-store.ts';
import type { Store } from './store.ts';

/** Serves one store to any number of workers. */
export class StoreHost {
  readonly #store: Store;
  /** Channel -> the workers listening on it (by their outgoing batchers). */
  readonly #listeners = new Map<string, Set<PortBatcher>>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Serves `port`'s calls until the returned function is called (the worker is gone). */
  attach(port: IpcPort): () => void {
    const channels = new Set<string>();
    const out = new PortBatcher(port);
    const listener = (message: unknown) => {
      if (!isStoreMessage(message)) return;
      for (const item of storeItems(message)) {
        if (item.mcppStore !== 'call') continue;
        const call = item as StoreCall;
        this.#answer(out, call, channels).then(
          (value) => out.push({ mcppStore: 'result', id: call.id, value: value ?? null }),
          (error: Error) =>
            out.push({ mcppStore: 'error', id: call.id, name: error.name, message: error.message }),
        );
      }
    };
    port.on('message', listener);
    return () => {
      port.off('message', listener);
      for (const channel of channels) this.#unlisten(channel, out);
    };
  }

  async #answer(port: PortBatcher, call: StoreCall, channels: Set<string>): Promise<unknown> {
    const store = this.#store;
    const [a, b, c, d] = call.args;
    const text = (value: unknown) => String(value);
    const ttl = (value: unknown) => (typeof value === 'number' ? value : undefined);
    switch (call.op) {
      case 'get':
        return store.get(text(a));
      case 'set':
        return store.set(text(a), text(b), ttl(c));
      case 'setIfAbsent':
        return store.setIfAbsent(text(a), text(b), ttl(c));
      case 'delete':
        return store.delete(text(a));
      case 'deleteIf':
        return store.deleteIf(text(a), text(b));
      case 'replaceIf':
        return store.replaceIf(text(a), text(b), text(c), ttl(d));
      case 'hit':
        return store.hit(text(a), Number(b));
      case 'peek':
        return store.peek(text(a));
      case 'publish':
        await this.#publish(text(a), text(b));
        return undefined;
      case 'subscribe': {
        const channel = text(a);
        channels.add(channel);
        let ports = this.#listeners.get(channel);
        if (ports === undefined) {
          ports = new Set();
          this.#listeners.set(channel, ports);
        }
        ports.add(port);
        return undefined;
      }
      case 'unsubscribe':
        channels.delete(text(a));
        this.#unlisten(text(a), port);
        return undefined;
      default:
        throw new Error(`unknown store operation ${String(call.op)}`);
    }
  }

  /**
   * Resolves once `message` is written out to every worker listening on `channel`; rejects when
   * a worker's channel is past its bound (that worker reads too slowly: the publisher, a relay
   * exchange, fails instead of the primary's memory growing) or gone.
   */
  #publish(channel: string, message: string): Promise<unknown> {
    const sends = [...(this.#listeners.get(channel) ?? [])].map(
      (port) =>
        new Promise<void>((resolve, reject) => {
          const sent = (error: Error | null) => (error === null ? resolve() : reject(error));
          if (!port.push({ mcppStore: 'message', channel, message }, sent))
            reject(new Error("a worker's store channel is full"));
        }),
    );
    return Promise.all(sends);
  }

  #unlisten(channel: string, port: PortBatcher): void {
    const ports = this.#listeners.get(channel);
    if (ports === undefined) return;
    ports.delete(port);
    if (ports.size === 0) this.#listeners.delete(channel);
  }
}
