/**
 * @module limits/rate-limiter
 * Named rate limits over a {@link RateStore}: per proxy token and per client IP for HTTP
 * requests, WebSocket messages and new sessions, and a far tighter limit on failed
 * authentication per client IP (brute-force protection). Exceeding one is a 429 with
 * `Retry-After` and the stable code `rate_limited`.
 */
import { ProxyError } from '../errors.ts';
import type { RateStore } from './rate-store.ts';

/** One limit: at most `max` hits per `windowMs`; `max` 0 disables it. */
export interface RateRule {
  readonly max: number;
  readonly windowMs: number;
}

/** Every limit the proxy enforces. */
export interface RateLimits {
  readonly requestsPerToken: RateRule;
  readonly requestsPerIp: RateRule;
  readonly wsMessagesPerToken: RateRule;
  readonly sessionsPerToken: RateRule;
  readonly authFailuresPerIp: RateRule;
}

/** The kinds of limit, for keys, errors and metrics. */
export type RateLimitName = keyof RateLimits;

/** Checks and counts hits against the configured limits. */
export class RateLimiter {
  readonly #store: RateStore;
  #limits: RateLimits;
  /** Called for every refusal (metrics). */
  readonly #onLimited: (name: RateLimitName) => void;

  constructor(store: RateStore, limits: RateLimits, onLimited: (name: RateLimitName) => void = () => {}) {
    this.#store = store;
    this.#limits = limits;
    this.#onLimited = onLimited;
  }

  /** Replaces the limits (configuration reload); counters carry on. */
  replaceLimits(limits: RateLimits): void {
    this.#limits = limits;
  }

  /** Counts one hit; throws `rate_limited` (429) once the limit is exceeded. */
  async consume(name: RateLimitName, subject: string): Promise<void> {
    const rule = this.#limits[name];
    if (rule.max === 0) return;
    const hit = await this.#store.hit(`${name}:${subject}`, rule.windowMs);
    if (hit.count > rule.max) this.#refuse(name, hit.resetInMs);
  }

  /** Throws `rate_limited` if `subject` is already over the limit, without counting a hit. */
  async assertUnder(name: RateLimitName, subject: string): Promise<void> {
    const rule = this.#limits[name];
    if (rule.max === 0) return;
    const hit = await this.#store.peek(`${name}:${subject}`);
    if (hit && hit.count >= rule.max) this.#refuse(name, hit.resetInMs);
  }

  #refuse(name: RateLimitName, resetInMs: number): never {
    this.#onLimited(name);
    const retryAfter = Math.max(1, Math.ceil(resetInMs / 1000));
    throw new ProxyError(
      'rate_limited',
      name === 'authFailuresPerIp'
        ? `Too many failed authentication attempts from this address: retry in ${retryAfter} s.`
        : `Rate limit exceeded (${describe(name)}): retry in ${retryAfter} s.`,
      {
        headers: { 'retry-after': String(retryAfter) },
        data: { limit: name, retryAfterSeconds: retryAfter },
      },
    );
  }
}

function describe(name: RateLimitName): string {
  switch (name) {
    case 'requestsPerToken':
      return 'requests per proxy token';
    case 'requestsPerIp':
      return 'requests per client address';
    case 'wsMessagesPerToken':
      return 'WebSocket messages per proxy token';
    case 'sessionsPerToken':
      return 'new sessions per proxy token';
    case 'authFailuresPerIp':
      return 'failed authentications per client address';
  }
}
