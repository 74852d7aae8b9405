/**
 * @module store/in-process-parts
 * What the memory and SQLite stores keep in this process either way: rate-limit window counters
 * (a counter is bumped on every request; a disk write per request would cost more than the
 * request) and pub/sub channels (one process has no one else to tell). The two stores extend
 * it and add their own keyed values.
 */
import { MemoryRateStore, type WindowHit } from '../limits/rate-store.ts';
import { LocalChannels, type StoreListener } from './store.ts';

/** Window counters and channels in this process's memory. */
export class InProcessParts {
  readonly #counters: MemoryRateStore;
  readonly #channels = new LocalChannels();

  /** @param now the store's clock, in epoch ms. */
  constructor(now: () => number) {
    this.#counters = new MemoryRateStore(now);
  }

  hit(key: string, windowMs: number): Promise<WindowHit> {
    return this.#counters.hit(key, windowMs);
  }

  peek(key: string): Promise<WindowHit | undefined> {
    return this.#counters.peek(key);
  }

  hitNow(key: string, windowMs: number): WindowHit {
    return this.#counters.hitNow(key, windowMs);
  }

  peekNow(key: string): WindowHit | undefined {
    return this.#counters.peekNow(key);
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#channels.deliver(channel, message);
  }

  async subscribe(channel: string, listener: StoreListener): Promise<() => Promise<void>> {
    this.#channels.add(channel, listener);
    return async () => {
      this.#channels.remove(channel, listener);
    };
  }

  /** Drops the channels and the counters (the store's own `close` calls it). */
  protected async closeParts(): Promise<void> {
    this.#channels.clear();
    await this.#counters.close();
  }
}
