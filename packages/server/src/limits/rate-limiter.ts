/**
 * @module limits/rate-limiter
 * Named rate limits over a {@link RateStore}: per proxy token and per client IP for HTTP
 * requests, WebSocket messages and new sessions, and a far tighter limit on failed
 * authentication per client IP (brute-force protection). Exceeding one is a 429 with
 * `Retry-After` and the stable code `rate_limited`. A principal's rate class (issue 17) replaces
 * the per-principal limits with its own.
 */
import { hash } from 'node:crypto';
import { ProxyError } from '../errors.ts';
import { MemoryRateStore, type RateStore, type WindowHit } from './rate-store.ts';
import { RATE_LIMITS_ON_STORE_FAILURE } from './store-failures.ts';

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

/** The limits a rate class may change: those counted per principal. */
export type ClassLimitName = 'requestsPerToken' | 'wsMessagesPerToken' | 'sessionsPerToken';

/** Rate classes by name: each replaces some per-principal limits. */
export type RateClasses = Readonly<Record<string, Partial<Readonly<Record<ClassLimitName, RateRule>>>>>;

/** Subjects longer than this are counted under their SHA-256 (a subject can be a 256-character name). */
const LONGEST_PLAIN_SUBJECT = 80;

/** The counter key of `subject` under limit `name`: exact, and bounded in length. */
function counterKey(name: RateLimitName, subject: string): string {
  return `${name}:${subject.length > LONGEST_PLAIN_SUBJECT ? `#${hash('sha256', subject, 'base64url')}` : subject}`;
}

/** How a {@link RateLimiter} lives through a store that does not answer. */
export interface StoreFailureOptions {
  /** Hears each counter the store did not answer (throttle it: it repeats). */
  readonly onStoreFailure?: (error: Error) => void;
  /** Time of the counters kept in this process meanwhile (store-failures.ts `local`). */
  readonly now?: () => number;
}

/** Checks and counts hits against the configured limits. */
export class RateLimiter {
  readonly #store: RateStore;
  #limits: RateLimits;
  #classes: RateClasses;
  /** Called for every refusal (metrics). */
  readonly #onLimited: (name: RateLimitName) => void;
  readonly #onStoreFailure: (error: Error) => void;
  /** Where the limits that count locally while the store does not answer count meanwhile. */
  readonly #local: MemoryRateStore;

  constructor(
    store: RateStore,
    limits: RateLimits,
    onLimited: (name: RateLimitName) => void = () => {},
    classes: RateClasses = {},
    failures: StoreFailureOptions = {},
  ) {
    this.#store = store;
    this.#limits = limits;
    this.#onLimited = onLimited;
    this.#classes = classes;
    this.#onStoreFailure = failures.onStoreFailure ?? (() => {});
    this.#local = new MemoryRateStore(failures.now);
  }

  /** Replaces the limits and rate classes (configuration reload); counters carry on. */
  replaceLimits(limits: RateLimits, classes: RateClasses = {}): void {
    this.#limits = limits;
    this.#classes = classes;
  }

  /**
   * Counts one hit; throws `rate_limited` (429) once the limit is exceeded. `rateClass`: the
   * principal's class, whose rule (when it sets one for this limit) replaces the default.
   */
  async consume(name: RateLimitName, subject: string, rateClass?: string): Promise<void> {
    await this.consumeNow(name, subject, rateClass);
  }

  /**
   * {@link consume}, at once when the store's counters are in this process (returns `undefined`
   * or throws); a promise only for a remote store. Spares the request hooks a promise per limit.
   */
  consumeNow(name: RateLimitName, subject: string, rateClass?: string): Promise<void> | undefined {
    const rule =
      (rateClass === undefined ? undefined : this.#classRule(name, rateClass)) ?? this.#limits[name];
    if (rule.max === 0) return undefined;
    const key = counterKey(name, subject);
    const store = this.#store;
    if (store.hitNow !== undefined) {
      this.#judgeHit(name, rule, store.hitNow(key, rule.windowMs));
      return undefined;
    }
    return store.hit(key, rule.windowMs).then(
      (hit) => this.#judgeHit(name, rule, this.#withLocal(name, key, hit)),
      (error: unknown) => this.#judgeHit(name, rule, this.#failed(name, error)?.hitNow(key, rule.windowMs)),
    );
  }

  /** Throws `rate_limited` if `subject` is already over the limit, without counting a hit. */
  async assertUnder(name: RateLimitName, subject: string): Promise<void> {
    await this.assertUnderNow(name, subject);
  }

  /** {@link assertUnder}, at once when the store's counters are in this process. */
  assertUnderNow(name: RateLimitName, subject: string): Promise<void> | undefined {
    const rule = this.#limits[name];
    if (rule.max === 0) return undefined;
    const key = counterKey(name, subject);
    const store = this.#store;
    if (store.peekNow !== undefined) {
      this.#judgePeek(name, rule, store.peekNow(key));
      return undefined;
    }
    return store.peek(key).then(
      (hit) => this.#judgePeek(name, rule, this.#withLocal(name, key, hit)),
      (error: unknown) => this.#judgePeek(name, rule, this.#failed(name, error)?.peekNow(key)),
    );
  }

  /**
   * The store did not answer limit `name`'s counter: the counters of this process when the limit
   * counts locally meanwhile, else none (the hit goes through). One decision: store-failures.ts.
   */
  #failed(name: RateLimitName, error: unknown): MemoryRateStore | undefined {
    this.#onStoreFailure(error instanceof Error ? error : new Error(String(error)));
    return RATE_LIMITS_ON_STORE_FAILURE[name] === 'local' ? this.#local : undefined;
  }

  /**
   * The store's count of `key`, or this process's when larger, for a limit that counts locally
   * while the store fails: a store that answers reads but refuses to count (scripts or writes
   * refused, a replica after a failover) must not hide the hits counted here meanwhile (review10
   * HARD-1). Until its window ends, the local count stands even once the store counts again.
   */
  #withLocal(name: RateLimitName, key: string, hit: WindowHit | undefined): WindowHit | undefined {
    if (RATE_LIMITS_ON_STORE_FAILURE[name] !== 'local') return hit;
    const local = this.#local.peekNow(key);
    return local !== undefined && (hit === undefined || local.count > hit.count) ? local : hit;
  }

  #judgeHit(name: RateLimitName, rule: RateRule, hit: WindowHit | undefined): void {
    if (hit && hit.count > rule.max) this.#refuse(name, hit.resetInMs);
  }

  #judgePeek(name: RateLimitName, rule: RateRule, hit: WindowHit | undefined): void {
    if (hit && hit.count >= rule.max) this.#refuse(name, hit.resetInMs);
  }

  /**
   * A class's rule for a limit (undefined: the class sets none, the default applies). A class the
   * configuration no longer has (a minted token's, renamed by a reload) is refused, never taken
   * for the defaults, which may be looser (review10 MINT-6).
   */
  #classRule(name: RateLimitName, rateClass: string): RateRule | undefined {
    if (!Object.hasOwn(this.#classes, rateClass)) {
      this.#onLimited(name);
      throw new ProxyError(
        'rate_limited',
        'Rate limit exceeded: the rate class this credential is held to is no longer configured: get a new one.',
        { data: { limit: name } },
      );
    }
    return this.#classes[rateClass]?.[name as ClassLimitName];
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
