/**
 * @module limits/redis-rate-store
 * Fixed-window counters in Redis, so several proxy instances share their limits. One atomic
 * script per hit (INCR, and PEXPIRE on the first hit of a window). When Redis cannot be
 * reached the limit is not enforced (fail open, logged): a rate limiter must not take the
 * proxy down with it.
 */
import { Redis } from 'ioredis';
import type { RateStore, WindowHit } from './rate-store.ts';

const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

/** How long one Redis command may take before the hit is let through. */
const COMMAND_TIMEOUT_MS = 500;

/** Counters in a Redis shared by the instances. */
export class RedisRateStore implements RateStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #onError: (error: Error) => void;

  constructor(url: string, onError: (error: Error) => void, prefix = 'mcp-proxy:rate:') {
    this.#prefix = prefix;
    this.#onError = onError;
    this.#redis = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
    });
    this.#redis.on('error', (error: Error) => onError(error));
  }

  /** Waits (bounded) for the first connection, so limits hold from the first request. */
  async ready(timeoutMs = 2_000): Promise<boolean> {
    if (this.#redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#redis.once('ready', onReady);
    });
  }

  async hit(key: string, windowMs: number): Promise<WindowHit> {
    if (this.#redis.status !== 'ready') return this.#unavailable(windowMs);
    try {
      const [count, ttl] = (await this.#redis.eval(HIT_SCRIPT, 1, this.#prefix + key, windowMs)) as [
        number,
        number,
      ];
      return { count, resetInMs: ttl };
    } catch (error) {
      this.#onError(error as Error);
      return { count: 0, resetInMs: windowMs };
    }
  }

  #unavailable(windowMs: number): WindowHit {
    this.#onError(new Error(`Redis is ${this.#redis.status}`));
    return { count: 0, resetInMs: windowMs };
  }

  async peek(key: string): Promise<WindowHit | undefined> {
    if (this.#redis.status !== 'ready') return undefined;
    try {
      const [count, ttl] = await Promise.all([
        this.#redis.get(this.#prefix + key),
        this.#redis.pttl(this.#prefix + key),
      ]);
      return count === null || ttl < 0 ? undefined : { count: Number(count), resetInMs: ttl };
    } catch (error) {
      this.#onError(error as Error);
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
