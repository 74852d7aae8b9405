/**
 * @module store/redis-store
 * The {@link Store} in Redis (`REDIS_URL`), shared by every instance: rate counters, revocations,
 * and (issues 18, 19) the vault, locks, session ownership and the relay's pub/sub. Keys carry the
 * `mcp-proxy:` prefix. Every operation rejects when Redis does not answer, counters included: the
 * caller decides (limits/store-failures.ts: a rate limit lets traffic through, a security counter
 * refuses).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { WindowHit } from '../limits/rate-store.ts';
import { LocalChannels, type MissedListener, type Store, type StoreListener } from './store.ts';

/** One atomic hit: INCR, and PEXPIRE on a window's first hit. */
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

/** Deletes a key only while it holds the given value. */
const DELETE_IF_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Compare-and-set: ARGV[1] expected, ARGV[2] the new value, ARGV[3] its TTL in ms ('' for none). */
const REPLACE_IF_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

/** How long one Redis command may take. */
const COMMAND_TIMEOUT_MS = 500;
/**
 * How long one PUBLISH may take on its own connection: messages carry relayed answers (parts of
 * up to 256 KiB), paced by the relay, not by this bound.
 */
const PUBLISH_TIMEOUT_MS = 2_000;

/**
 * How long the users of a subscriber that came back wait, at most, for the command and publish
 * connections to be back too before they hear they may have missed messages.
 */
const MISSED_WAIT_MS = 2_000;

/** Shared state in Redis. */
export class RedisStore implements Store {
  readonly #redis: Redis;
  readonly #url: string;
  readonly #prefix: string;
  readonly #onError: (error: Error) => void;
  readonly #channels = new LocalChannels();
  /** Who hears that the subscriber was down and is subscribed again. */
  readonly #missed = new Set<MissedListener>();
  /** By channel: its SUBSCRIBE while under way (a later listener is subscribed once it is done). */
  readonly #subscribing = new Map<string, Promise<unknown>>();
  /** The subscriber connection (Redis reserves a connection that subscribes), opened on first use. */
  #subscriber: Redis | undefined;
  /**
   * The connection PUBLISH goes out on: relayed answers never queue the heartbeats, ownership
   * look-ups and rate counters of the command connection behind them.
   */
  readonly #publisher: Redis;
  /**
   * What fails the SUBSCRIBEs still awaited: the subscriber queues one while Redis is unreachable,
   * and {@link close} must not leave its caller (and the app's close) waiting forever.
   */
  readonly #awaitingSubscribe = new Set<(error: Error) => void>();
  #closed = false;
  /** True once an UNSUBSCRIBE went unanswered, until the subscriber hears from Redis again. */
  #unanswered = false;

  constructor(url: string, onError: (error: Error) => void, prefix = 'mcp-proxy:') {
    this.#url = url;
    this.#prefix = prefix;
    this.#onError = onError;
    this.#redis = this.#connect();
    this.#publisher = this.#connect(PUBLISH_TIMEOUT_MS);
  }

  /** Waits (bounded) for the first connections, so the store holds from the first request. */
  async ready(timeoutMs = 2_000): Promise<boolean> {
    const ready = await Promise.all([this.#redis, this.#publisher].map((one) => readyOf(one, timeoutMs)));
    return ready.every(Boolean);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#redis.get(this.#prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) await this.#redis.set(this.#prefix + key, value);
    else await this.#redis.set(this.#prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    const answer =
      ttlMs === undefined
        ? await this.#redis.set(this.#prefix + key, value, 'NX')
        : await this.#redis.set(this.#prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return answer === 'OK';
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#redis.del(this.#prefix + key)) > 0;
  }

  async deleteIf(key: string, value: string): Promise<boolean> {
    return ((await this.#redis.eval(DELETE_IF_SCRIPT, 1, this.#prefix + key, value)) as number) > 0;
  }

  async replaceIf(key: string, expected: string, value: string, ttlMs?: number): Promise<boolean> {
    const ttl = ttlMs === undefined ? '' : String(Math.max(1, Math.ceil(ttlMs)));
    return (
      ((await this.#redis.eval(REPLACE_IF_SCRIPT, 1, this.#prefix + key, expected, value, ttl)) as number) > 0
    );
  }

  async hit(key: string, windowMs: number): Promise<WindowHit> {
    const [count, ttl] = (await this.#redis.eval(HIT_SCRIPT, 1, this.#prefix + key, windowMs)) as [
      number,
      number,
    ];
    return { count, resetInMs: ttl };
  }

  async peek(key: string): Promise<WindowHit | undefined> {
    const [count, ttl] = await Promise.all([
      this.#redis.get(this.#prefix + key),
      this.#redis.pttl(this.#prefix + key),
    ]);
    return count === null || ttl < 0 ? undefined : { count: Number(count), resetInMs: ttl };
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#publisher.publish(this.#prefix + channel, message);
  }

  async subscribe(
    channel: string,
    listener: StoreListener,
    missed?: MissedListener,
  ): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error('the store is closed');
    const subscriber = this.#subscriberConnection();
    const name = this.#prefix + channel;
    let subscribing = this.#subscribing.get(name);
    if (this.#channels.add(name, listener)) {
      const made = subscriber.subscribe(name);
      subscribing = made;
      this.#subscribing.set(name, made);
      const done = () => {
        if (this.#subscribing.get(name) === made) this.#subscribing.delete(name);
      };
      made.then(done, done);
    }
    try {
      // A listener added while the channel's SUBSCRIBE is under way hears nothing before it is done.
      if (subscribing !== undefined) await this.#untilClosed(subscribing);
    } catch (error) {
      this.#channels.remove(name, listener);
      throw error;
    }
    if (missed) this.#missed.add(missed);
    return async () => {
      if (missed) this.#missed.delete(missed);
      // A subscriber that is not connected has nothing to undo (and would queue the command).
      if (this.#channels.remove(name, listener) && subscriber.status === 'ready')
        await this.#unsubscribe(subscriber, name);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const fail of this.#awaitingSubscribe) fail(new Error('the store is closed'));
    this.#awaitingSubscribe.clear();
    this.#channels.clear();
    this.#missed.clear();
    this.#subscribing.clear();
    this.#subscriber?.disconnect();
    this.#publisher.disconnect();
    this.#redis.disconnect();
  }

  /** Settles as `promise` does, or rejects once the store closes. */
  #untilClosed<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#awaitingSubscribe.add(reject);
      promise.then(resolve, reject).finally(() => this.#awaitingSubscribe.delete(reject));
    });
  }

  /**
   * UNSUBSCRIBE, waited for at most a command's timeout: a subscriber that looks connected may
   * have lost Redis without knowing (a partition: nothing answers, and the subscriber has no
   * command timeout). Once one went unanswered the next are sent without waiting, until the
   * subscriber hears from Redis again: a close undoing many channels waits once, not per channel.
   */
  async #unsubscribe(subscriber: Redis, name: string): Promise<void> {
    const sent = subscriber.unsubscribe(name).then(
      () => true,
      () => true,
    );
    if (this.#unanswered) return;
    const answered = await Promise.race([sent, delay(COMMAND_TIMEOUT_MS, false, { ref: false })]);
    if (!answered) this.#unanswered = true;
  }

  #connect(commandTimeout = COMMAND_TIMEOUT_MS): Redis {
    const redis = new Redis(this.#url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout,
    });
    redis.on('error', (error: Error) => this.#onError(error));
    return redis;
  }

  #subscriberConnection(): Redis {
    if (this.#subscriber) return this.#subscriber;
    // A subscriber waits for messages indefinitely: no command timeout, and it queues its
    // SUBSCRIBE until connected. After a reconnect it subscribes again itself (not ioredis's
    // autoResubscribe, which says nothing when it is done): what was published while it was down
    // never arrives, so once subscribed again its users hear they may have missed messages.
    const subscriber = new Redis(this.#url, {
      lazyConnect: false,
      maxRetriesPerRequest: null,
      autoResubscribe: false,
    });
    let connectedBefore = false;
    /** When the subscriber was lost (performance.now()), until it is subscribed again. */
    let lostAt: number | undefined;
    subscriber.on('close', () => {
      lostAt ??= performance.now();
    });
    subscriber.on('ready', () => {
      this.#unanswered = false;
      if (!connectedBefore) {
        // A first connection that failed before it was made is no outage to measure from.
        connectedBefore = true;
        lostAt = undefined;
        return;
      }
      const lost = lostAt ?? performance.now();
      lostAt = undefined;
      const channels = this.#channels.channels();
      if (channels.length === 0) return;
      // Its users look up what they missed and say they listen again: told once the other
      // connections (dropped with it, as a rule) are back too, or a command's wait later.
      subscriber.subscribe(...channels).then(
        async () => {
          await Promise.all([this.#redis, this.#publisher].map((one) => readyOf(one, MISSED_WAIT_MS)));
          if (this.#closed) return;
          const awayMs = performance.now() - lost;
          for (const missed of this.#missed) missed(awayMs);
        },
        (error: Error) => this.#onError(error),
      );
    });
    subscriber.on('error', (error: Error) => this.#onError(error));
    subscriber.on('message', (channel: string, message: string) => {
      this.#unanswered = false;
      this.#channels.deliver(channel, message);
    });
    this.#subscriber = subscriber;
    return subscriber;
  }
}

/** Waits (bounded) for `redis` to be connected; false when it is not in time. */
function readyOf(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.once('ready', onReady);
  });
}
