/**
 * @module store/store-host
 * The primary's half of {@link ClusterStore} (issue 19, `WORKERS=N` without `REDIS_URL`): it
 * answers its workers' store calls from the one embedded store it holds, and carries pub/sub
 * between them (a message published by one worker reaches every worker listening, itself too).
 * The primary loads no Fastify: this file and the store are all it needs of the server.
 */
import { type IpcPort, isStoreMessage, type StoreCall, type StoreReply } from './cluster-store.ts';
import type { Store } from './store.ts';

/** Serves one store to any number of workers. */
export class StoreHost {
  readonly #store: Store;
  /** Channel -> the workers listening on it. */
  readonly #listeners = new Map<string, Set<IpcPort>>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Serves `port`'s calls until the returned function is called (the worker is gone). */
  attach(port: IpcPort): () => void {
    const channels = new Set<string>();
    const listener = (message: unknown) => {
      if (!isStoreMessage(message) || message.mcppStore !== 'call') return;
      const call = message as StoreCall;
      this.#answer(port, call, channels).then(
        (value) => reply(port, { mcppStore: 'result', id: call.id, value: value ?? null }),
        (error: Error) =>
          reply(port, { mcppStore: 'error', id: call.id, name: error.name, message: error.message }),
      );
    };
    port.on('message', listener);
    return () => {
      port.off('message', listener);
      for (const channel of channels) this.#unlisten(channel, port);
    };
  }

  async #answer(port: IpcPort, call: StoreCall, channels: Set<string>): Promise<unknown> {
    const store = this.#store;
    const [a, b, c] = call.args;
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
      case 'hit':
        return store.hit(text(a), Number(b));
      case 'peek':
        return store.peek(text(a));
      case 'publish':
        this.#publish(text(a), text(b));
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

  #publish(channel: string, message: string): void {
    for (const port of this.#listeners.get(channel) ?? [])
      reply(port, { mcppStore: 'message', channel, message });
  }

  #unlisten(channel: string, port: IpcPort): void {
    const ports = this.#listeners.get(channel);
    if (ports === undefined) return;
    ports.delete(port);
    if (ports.size === 0) this.#listeners.delete(channel);
  }
}

/** Sends to a worker that may have just exited (its answer is then moot). */
function reply(port: IpcPort, message: StoreReply): void {
  try {
    port.send(message);
  } catch {
    // The worker is gone; the cluster restarts it and its store calls start over.
  }
}
