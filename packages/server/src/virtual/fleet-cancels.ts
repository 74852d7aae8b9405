/**
 * @module virtual/fleet-cancels
 * A client's `notifications/cancelled` for a call of its session that runs on another instance
 * crosses on the principal's channel (virtual/fleet-streams.ts). The instance running the call
 * may not listen to that channel yet (its subscription is still on its way to the store), so
 * the instance that passed the cancellation on keeps it a while ({@link CANCEL_KEEPING}) and
 * tells it again whenever an instance says it started listening to the channel (and when it
 * starts listening itself), once to each instance and subscription round (an instance whose
 * subscriber came back is heard anew). Each cancellation carries a nonce: an instance
 * acts on a nonce at most once, so a cancellation told again never cancels a newer call that
 * reused the id; a principal whose nonces this instance could not all remember has its
 * cancellations told again ignored meanwhile (only first tellings are acted on). Both memories
 * are bounded, in all and per principal, and make room at the expense of the principal holding
 * the most: one principal's flood (or many principals' at their share) leaves another its room.
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject, RequestId } from '../jsonrpc.ts';
import type { FleetCalls } from './fleet-streams.ts';

/** Bounds, all defaults in one literal. */
export const CANCEL_KEEPING = {
  /** How long a passed-on cancellation is kept to be told again. */
  keptMs: 30_000,
  /**
   * Passed-on cancellations kept on this instance at once: past it, room is made by forgetting
   * the oldest of the principal keeping the most (a principal keeping as many or more is told
   * once only).
   */
  kept: 1_024,
  /** Of which one principal's, at most. */
  principalKept: 64,
  /**
   * Tellings again of one kept cancellation at most: once per instance and subscription round,
   * as each says it listens.
   */
  retoldInstances: 32,
  /**
   * Nonces heard, remembered on this instance at once: past it, room is made by forgetting one of
   * the principal remembered most (whose cancellations told again are ignored a while then).
   */
  heard: 16_384,
  /** Of which one principal's, at most (past it, its cancellations told again are ignored a while). */
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
  listened(principalKey: string, round: number): void {
    this.#channel.tell(principalKey, { t: 'listening', n: round });
    this.retell(principalKey, HERE, round);
  }

  /**
   * Tells again the principal's kept cancellations not yet told again for the instance tagged
   * `to` (what a message's `from` says) in its subscription `round` (its `n`: a subscriber that
   * came back is a new round, which may have missed them), which said it started listening.
   */
  retell(principalKey: string, to: unknown, round: unknown): void {
    if (typeof to !== 'string') return;
    const n = Number.isSafeInteger(round) ? (round as number) : undefined;
    const tag = n === undefined ? to : `${to}#${n}`;
    // Told again with the round it is for: a later round's hearer judges it by when it was lost.
    const again = n === undefined ? { again: 1 } : { again: 1, n };
    this.#passed.retell(principalKey, tag, (body) => this.#channel.tell(principalKey, { ...body, ...again }));
  }

  /**
   * A cancellation heard on the principal's channel, which this instance listens to since
   * `listenedAt`: acted on once per nonce; told again, only on a call that started by then (a
   * newer one would have heard it the first time; for a subscriber that came back, `listenedAt`
   * is when it was lost: a call started while it was away may have reused the id).
   */
  heard(principalKey: string, body: JsonObject, listenedAt: number | undefined): void {
    const { id, name, session, nonce } = body as Partial<CancelBody>;
    if (typeof session !== 'string' || typeof name !== 'string') return;
    if (typeof id !== 'string' && typeof id !== 'number') return;
    // Without a nonce: from an instance of an earlier version, which tells each once.
    const again = body.again === 1;
    if (typeof nonce === 'string' && !this.#heard.acts(principalKey, nonce, again)) return;
    this.#calls.cancelled(principalKey, name, session, id, again ? listenedAt : undefined);
  }

  /** Forgets what it keeps (the app closes). */
  clear(): void {
    this.#passed.clear();
  }
}

/** What {@link FleetCancels.listened} tells again for: the keeper itself (it may have missed a word). */
const HERE = '';

/** A kept cancellation: when it is forgotten, and the instances it was told again for. */
interface Kept {
  readonly body: CancelBody;
  readonly retoldTo: Set<string>;
  readonly timer: NodeJS.Timeout;
}

/** One principal's kept cancellations (oldest first), and what stops its channel being listened to. */
interface Keeping {
  readonly bodies: Map<string, Kept>;
  readonly unwatch: () => void;
}

/** The key of `groups` whose value holds the most (`sizeOf`); undefined when it is empty. */
function holdingMost<V>(groups: Map<string, V>, sizeOf: (value: V) => number): string | undefined {
  let most: string | undefined;
  let size = 0;
  for (const [key, value] of groups) {
    const held = sizeOf(value);
    if (held > size) [most, size] = [key, held];
  }
  return most;
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
    const own = this.#keeping.get(principalKey)?.bodies.size ?? 0;
    if (own >= CANCEL_KEEPING.principalKept) return false;
    if (this.#count >= CANCEL_KEEPING.kept) {
      const most = holdingMost(this.#keeping, (keeping) => keeping.bodies.size);
      const theirs = most === undefined ? undefined : this.#keeping.get(most);
      // Room is made only at the expense of a principal keeping more than this one.
      if (most === undefined || theirs === undefined || theirs.bodies.size <= own + 1) return false;
      const [oldest] = theirs.bodies.keys();
      if (oldest !== undefined) this.#forget(most, theirs, oldest);
    }
    const entry = this.#keeping.get(principalKey) ?? { bodies: new Map(), unwatch: watch() };
    this.#keeping.set(principalKey, entry);
    const timer = setTimeout(() => this.#forget(principalKey, entry, body.nonce), CANCEL_KEEPING.keptMs);
    timer.unref();
    entry.bodies.set(body.nonce, { body, retoldTo: new Set(), timer });
    this.#count += 1;
    return true;
  }

  /**
   * Tells again (`tell`, false when it could not) the principal's kept cancellations for instance
   * `to`: once each per instance, to {@link CANCEL_KEEPING}.retoldInstances instances at most.
   */
  retell(principalKey: string, to: string, tell: (body: CancelBody) => boolean): void {
    for (const kept of this.#keeping.get(principalKey)?.bodies.values() ?? []) {
      if (kept.retoldTo.has(to) || kept.retoldTo.size >= CANCEL_KEEPING.retoldInstances) continue;
      if (tell(kept.body)) kept.retoldTo.add(to);
    }
  }

  /** Forgets everything (the app closes). */
  clear(): void {
    for (const keeping of this.#keeping.values())
      for (const kept of keeping.bodies.values()) clearTimeout(kept.timer);
    this.#keeping.clear();
    this.#count = 0;
  }

  #forget(principalKey: string, entry: Keeping, nonce: string): void {
    const kept = entry.bodies.get(nonce);
    if (kept === undefined) return;
    clearTimeout(kept.timer);
    entry.bodies.delete(nonce);
    this.#count -= 1;
    if (entry.bodies.size > 0 || this.#keeping.get(principalKey) !== entry) return;
    this.#keeping.delete(principalKey);
    entry.unwatch();
  }
}

/** The nonces of the cancellations this instance heard, for a while. */
class HeardCancels {
  readonly #now: () => number;
  /** By principal, then by nonce (oldest first): when each was heard. */
  readonly #heard = new Map<string, Map<string, number>>();
  #count = 0;
  /**
   * Principals some of whose nonces were not remembered (or forgotten early), until when their
   * cancellations told again are ignored (oldest first); past {@link CANCEL_KEEPING}.heard of
   * them, everyone's are ({@link #allDeafUntil}).
   */
  readonly #deaf = new Map<string, number>();
  #allDeafUntil = 0;

  constructor(now: () => number) {
    this.#now = now;
  }

  /**
   * Whether to act on the cancellation `nonce` of `principalKey` (`again`: told again): once
   * per nonce, and a telling again only while every nonce of the principal that could still be
   * told again is remembered.
   */
  acts(principalKey: string, nonce: string, again: boolean): boolean {
    const own = this.#heard.get(principalKey);
    if (own?.has(nonce) === true) return false;
    const now = this.#now();
    for (const [deaf, until] of this.#deaf) {
      if (until > now) break;
      this.#deaf.delete(deaf);
    }
    if (again && (now < this.#allDeafUntil || (this.#deaf.get(principalKey) ?? 0) > now)) return false;
    if (own !== undefined && own.size >= CANCEL_KEEPING.principalHeard)
      this.#forgetOld(principalKey, own, now);
    if ((own?.size ?? 0) >= CANCEL_KEEPING.principalHeard) {
      this.#deafen(principalKey, now);
      return true;
    }
    if (this.#count >= CANCEL_KEEPING.heard) this.#makeRoom(principalKey, now);
    const nonces = own ?? new Map<string, number>();
    this.#heard.set(principalKey, nonces);
    nonces.set(nonce, now);
    this.#count += 1;
    return true;
  }

  /** Forgets the nonces no longer told again, then (still full) one of the principal remembered most. */
  #makeRoom(principalKey: string, now: number): void {
    for (const [principal, nonces] of this.#heard) this.#forgetOld(principal, nonces, now);
    if (this.#count < CANCEL_KEEPING.heard) return;
    const most = holdingMost(this.#heard, (nonces) => nonces.size) ?? principalKey;
    const nonces = this.#heard.get(most);
    const [oldest] = nonces?.keys() ?? [];
    if (nonces === undefined || oldest === undefined) return;
    nonces.delete(oldest);
    this.#count -= 1;
    this.#deafen(most, now);
  }

  /**
   * Forgets the principal's nonces no longer told again (oldest first): told again only while
   * kept, a nonce older than twice that is never heard again.
   */
  #forgetOld(principalKey: string, nonces: Map<string, number>, now: number): void {
    const forgetBefore = now - 2 * CANCEL_KEEPING.keptMs;
    for (const [nonce, at] of nonces) {
      if (at >= forgetBefore) break;
      nonces.delete(nonce);
      this.#count -= 1;
    }
    if (nonces.size === 0 && this.#heard.get(principalKey) === nonces) this.#heard.delete(principalKey);
  }

  /** Ignores the principal's cancellations told again while one it could not remember may be. */
  #deafen(principalKey: string, now: number): void {
    const until = now + 2 * CANCEL_KEEPING.keptMs;
    this.#deaf.delete(principalKey);
    if (this.#deaf.size >= CANCEL_KEEPING.heard) this.#allDeafUntil = until;
    else this.#deaf.set(principalKey, until);
  }
}
