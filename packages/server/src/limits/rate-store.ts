/**
 * @module limits/rate-store
 * Fixed-window counters for rate limits. In memory by default (bounded, swept); a shared store
 * (Redis) implements the same interface when several instances must share limits.
 */

/** A counter's state after one hit. */
export interface WindowHit {
  /** Hits in the current window, this one included. */
  readonly count: number;
  /** Milliseconds until the window resets. */
  readonly resetInMs: number;
}

/** Where counters live. */
export interface RateStore {
  /** Counts one hit for `key` in a window of `windowMs`. */
  hit(key: string, windowMs: number): Promise<WindowHit>;
  /** Reads a counter without counting. */
  peek(key: string): Promise<WindowHit | undefined>;
  /**
   * {@link hit} at once, for a store whose counters live in this process: the request hooks then
   * go on without a promise and a microtask per limit. Absent on a remote store (Redis).
   */
  readonly hitNow?: ((key: string, windowMs: number) => WindowHit) | undefined;
  /** {@link peek} at once; present exactly when {@link hitNow} is. */
  readonly peekNow?: ((key: string) => WindowHit | undefined) | undefined;
  close(): Promise<void>;
}

/** Most distinct keys the memory store tracks; the oldest windows are dropped beyond it. */
const MEMORY_MAX_KEYS = 100_000;

/** Counters in this process. */
export class MemoryRateStore implements RateStore {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async hit(key: string, windowMs: number): Promise<WindowHit> {
    return this.hitNow(key, windowMs);
  }

  async peek(key: string): Promise<WindowHit | undefined> {
    return this.peekNow(key);
  }

  hitNow(key: string, windowMs: number): WindowHit {
    const now = this.#now();
    let window = this.#windows.get(key);
    if (!window || window.resetAt <= now) {
      this.#windows.delete(key);
      if (this.#windows.size >= MEMORY_MAX_KEYS) this.#evict(now);
      window = { count: 0, resetAt: now + windowMs };
      this.#windows.set(key, window);
    }
    window.count++;
    return { count: window.count, resetInMs: window.resetAt - now };
  }

  peekNow(key: string): WindowHit | undefined {
    const now = this.#now();
    const window = this.#windows.get(key);
    if (!window || window.resetAt <= now) return undefined;
    return { count: window.count, resetInMs: window.resetAt - now };
  }

  async close(): Promise<void> {
    this.#windows.clear();
  }

  /** Drops expired windows, then (if still full) the oldest ones. */
  #evict(now: number): void {
    for (const [key, window] of this.#windows) if (window.resetAt <= now) this.#windows.delete(key);
    for (const key of this.#windows.keys()) {
      if (this.#windows.size < MEMORY_MAX_KEYS * 0.9) break;
      this.#windows.delete(key);
    }
  }
}
