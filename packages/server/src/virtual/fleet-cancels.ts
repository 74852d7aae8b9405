/**
 * @module virtual/fleet-cancels
 * A client's `notifications/cancelled` for a call of its session that runs on another instance
 * crosses on the principal's channel (virtual/fleet-streams.ts). The instance running the call
 * may not listen to that channel yet (its subscription is still on its way to the store), so
 * the instance that passed the cancellation on keeps it a while ({@link CANCEL_KEEPING}) and
 * tells it again whenever an instance says it started listening to the channel (and when it
 * starts listening itself). Each cancellation carries a nonce: an instance acts on a nonce at
 * most once, so a cancellation told again never cancels a newer call that reused the id.
 * Both memories are bounded, in all and per principal (one principal's flood leaves the others
 * their share).
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject, RequestId } from '../jsonrpc.ts';
import type { FleetCalls } from './fleet-streams.ts';

/** Bounds, all defaults in one literal. */
export const CANCEL_KEEPING = {
  /** How long a passed-on cancellation is kept to be told again. */
  keptMs: 30_000,
  /** Passed-on cancellations kept on this instance at once (more are told once only). */
  kept: 1_024,
  /** Of which one principal's, at most. */
  principalKept: 64,
  /** Times one kept cancellation is told again at most. */
  retold: 8,
  /** Nonces heard, remembered on this instance at once (the oldest forgotten first). */
  heard: 16_384,
  /** Of which one principal's, at most (past it its nonces are not remembered). */
  principalHeard: 256,
} as const;

/** A cancellation as it crosses: the virtual server, the client session, the id, a nonce. */
export interface CancelBody extends JsonObject {
  readonly t: 'cancel';
  readonly name: string;
  readonly session: string;
  readonly id: RequestId;
  readonly nonce: string;
}

/** What {@link FleetCancels} does with the principal's channel (virtual/fleet-streams.ts). */
export interface CancelChannel {
  /** Publishes `body` on the principal's channel; false when it cannot (bounds, no store). */
  tell(principalKey: string, body: JsonObject): boolean;
  /** Listens to the principal's channel until the returned function is called. */
  watch(principalKey: string): () => void;
}

/** The cancellations crossing between instances, on this instance. */
export class FleetCancels {
  readonly #channel: CancelChannel;
  readonly #calls: FleetCalls;
  readonly #passed = new PassedCancels();
  readonly #heard: HeardCancels;

  constructor(channel: CancelChannel, calls: FleetCalls, now: () => number) {
    this.#channel = channel;
    this.#calls = calls;
    this.#heard = new HeardCancels(now);
  }

  /** Tells the other instances the client cancelled its session's call `id`, and keeps it. */
  pass(principalKey: string, name: string, session: string, id: RequestId): void {
    const body: CancelBody = { t: 'cancel', name, session, id, nonce: randomBytes(12).toString('base64url') };
    if (this.#channel.tell(principalKey, body))
      this.#passed.keep(principalKey, body, () => this.#channel.watch(principalKey));
  }

  /**
   * This instance started listening to the principal's channel: says so there (the others tell
   * it the cancellations they keep), and tells again the ones it keeps (it may have missed that).
   */
  listened(principalKey: string): void {
    this.#channel.tell(principalKey, { t: 'listening' });
    this.retell(principalKey);
  }

  /** Tells again the principal's kept cancellations (an instance said it started listening). */
  retell(principalKey: string): void {
    for (const body of this.#passed.retell(principalKey))
      this.#channel.tell(principalKey, { ...body, again: 1 });
  }

  /**
   * A cancellation heard on the principal's channel, which this instance listens to since
   * `listenedAt`: acted on once per nonce; told again, only on a call that started by then (a
   * newer one would have heard it the first time).
   */
  heard(principalKey: string, body: JsonObject, listenedAt: number | undefined): void {
    const { id, name, session, nonce } = body as Partial<CancelBody>;
    if (typeof session !== 'string' || typeof name !== 'string') return;
    if (typeof id !== 'string' && typeof id !== 'number') return;
    // Without a nonce: from an instance of an earlier version, which tells each once.
    if (typeof nonce === 'string' && !this.#heard.first(principalKey, nonce)) return;
    this.#calls.cancelled(principalKey, name, session, id, body.again === 1 ? listenedAt : undefined);
  }

  /** Forgets what it keeps (the app closes). */
  clear(): void {
    this.#passed.clear();
  }
}

/** One principal's kept cancellations, and what stops its channel being listened to. */
interface Keeping {
  readonly bodies: Map<string, { readonly body: CancelBody; retold: number; readonly timer: NodeJS.Timeout }>;
  readonly unwatch: () => void;
}

/** The cancellations this instance passed on, kept to be told again. */
class PassedCancels {
  readonly #keeping = new Map<string, Keeping>();
  #count = 0;

  /**
   * Keeps `body` of `principalKey` for {@link CANCEL_KEEPING}.keptMs; `watch` listens to the
   * principal's channel meanwhile (to hear who starts listening). False at a bound (told once).
   */
  keep(principalKey: string, body: CancelBody, watch: () => () => void): boolean {
    const keeping = this.#keeping.get(principalKey);
    if (this.#count >= CANCEL_KEEPING.kept) return false;
    if ((keeping?.bodies.size ?? 0) >= CANCEL_KEEPING.principalKept) return false;
    const entry = keeping ?? { bodies: new Map(), unwatch: watch() };
    this.#keeping.set(principalKey, entry);
    const timer = setTimeout(() => {
      entry.bodies.delete(body.nonce);
      this.#count -= 1;
      if (entry.bodies.size > 0 || this.#keeping.get(principalKey) !== entry) return;
      this.#keeping.delete(principalKey);
      entry.unwatch();
    }, CANCEL_KEEPING.keptMs);
    timer.unref();
    entry.bodies.set(body.nonce, { body, retold: 0, timer });
    this.#count += 1;
    return true;
  }

  /** The principal's kept cancellations to tell again now (each at most {@link CANCEL_KEEPING}.retold times). */
  retell(principalKey: string): CancelBody[] {
    const bodies: CancelBody[] = [];
    for (const kept of this.#keeping.get(principalKey)?.bodies.values() ?? []) {
      if (kept.retold >= CANCEL_KEEPING.retold) continue;
      kept.retold += 1;
      bodies.push(kept.body);
    }
    return bodies;
  }

  /** Forgets everything (the app closes). */
  clear(): void {
    for (const keeping of this.#keeping.values())
      for (const kept of keeping.bodies.values()) clearTimeout(kept.timer);
    this.#keeping.clear();
    this.#count = 0;
  }
}

/** The nonces of the cancellations this instance heard, for a while. */
class HeardCancels {
  readonly #now: () => number;
  /** By principal and nonce, oldest first: when each was heard. */
  readonly #heard = new Map<string, { readonly principalKey: string; readonly at: number }>();
  readonly #principals = new Map<string, number>();

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Whether `nonce` of `principalKey` is heard for the first time (remembered then, within bounds). */
  first(principalKey: string, nonce: string): boolean {
    const key = `${principalKey}\n${nonce}`;
    if (this.#heard.has(key)) return false;
    const now = this.#now();
    // Told again only while kept: a nonce older than that is never heard again.
    const forgetBefore = now - 2 * CANCEL_KEEPING.keptMs;
    for (const [oldest, { at }] of this.#heard) {
      if (at >= forgetBefore && this.#heard.size < CANCEL_KEEPING.heard) break;
      this.#forget(oldest);
    }
    const count = this.#principals.get(principalKey) ?? 0;
    if (count >= CANCEL_KEEPING.principalHeard) return true;
    this.#heard.set(key, { principalKey, at: now });
    this.#principals.set(principalKey, count + 1);
    return true;
  }

  #forget(key: string): void {
    const heard = this.#heard.get(key);
    if (heard === undefined) return;
    this.#heard.delete(key);
    const left = (this.#principals.get(heard.principalKey) ?? 1) - 1;
    if (left > 0) this.#principals.set(heard.principalKey, left);
    else this.#principals.delete(heard.principalKey);
  }
}
