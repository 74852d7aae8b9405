/**
 * @module virtual/fleet-channels
 * The store's pub/sub as virtual servers' instances use it (virtual/fleet-streams.ts says what
 * crosses): a channel per principal, listened to while something of that principal's here needs
 * it (refcounted), and each instance's own channel; publishing bounded in bytes per principal.
 *
 * Messages are sealed for the channel they travel on (`SESSION_SECRET`, as relay messages are:
 * the box is passed in) and carry the principal, which the hearing side checks against the
 * channel's and never crosses: one principal's messages reach only its own streams, an answer
 * only what waits for that principal. A principal's channel is named by an HMAC of its key under
 * a key of the box's (a hash without `SESSION_SECRET`): a store reader cannot tell whose it is.
 * What one principal has on its way out is bounded in bytes, its members' messages apart from its
 * clients' answers (an answer the proxy accepted always fits alone).
 *
 * The store's subscriber may drop and come back (Redis): what was published meanwhile is lost,
 * which the principal's channel's owner hears ({@link ChannelHearing}.missed).
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { asObject, type JsonObject } from '../jsonrpc.ts';
import { throttledWarning } from '../observability/throttled-warning.ts';
import { type MissedListener, namespaced, type Store } from '../store/store.ts';
import { type Lane, OutgoingBytes } from './fleet-outgoing.ts';

/** The purpose (HKDF label) of the key that seals these messages: no other use's key. */
export const FLEET_PURPOSE = 'mcp-proxy virtual fleet aes-256-gcm v1';

/** Bounds, all defaults in one literal. */
export const FLEET_LIMITS = {
  /** How long another instance has to say it asked its client a member's server request. */
  takenMs: 2_000,
  /** How long a GET stream's opening (and the start) waits for a channel (then it goes on). */
  listenMs: 2_000,
  /** Bytes of one principal's messages on their way to the store at once; more are dropped. */
  principalBytes: 1 << 20,
  /** Bytes of every principal's messages on their way to the store at once. */
  totalBytes: 16 << 20,
  /** Server requests of one principal's members offered to other instances and not yet taken. */
  principalOffers: 32,
  /** Bytes around a client's answer on its way (what names it): its bound is the body's and this. */
  answerEnvelope: 64 << 10,
} as const;

/** Seals a message for the channel it travels on (http/relay-box.ts, under its own purpose). */
export interface FleetBox {
  seal(channel: string, plain: Uint8Array): string;
  /** The bytes sealed for `channel`, if `sealed` opens there and is fresh. */
  open(channel: string, sealed: string): Buffer | undefined;
  /** A keyed name for `text` (an HMAC under a key of its own): what names a principal's channel. */
  name(text: string): string;
}

/** What reaching the other instances needs (none: one instance, nothing crosses). */
export interface FleetDeps {
  /** A namespaced view of the store the instances share. */
  readonly store: Store;
  /** Seals every message (`SESSION_SECRET` set); none: the store is trusted (docs/security.md). */
  readonly box?: FleetBox | undefined;
  /** Hears the store's failures (throttled by the caller). */
  readonly onError: (error: Error) => void;
  /** The largest client answer the proxy accepts (`BODY_LIMIT_BYTES`): one always crosses. */
  readonly answerBytes?: number | undefined;
}

/**
 * What reaching the other instances through the shared `store` needs: its view, its warnings,
 * and the largest answer a client may POST (`answerBytes`, `BODY_LIMIT_BYTES`).
 */
export function fleetOn(
  store: Store,
  box: FleetBox | undefined,
  logger: Logger,
  answerBytes?: number,
): FleetDeps {
  return {
    store: namespaced(store, 'virtual-fleet:'),
    box,
    onError: throttledWarning(logger, 'shared store unreachable: virtual server streams not shared'),
    answerBytes,
  };
}

/** A subscription: what undoes it once made (undefined: it failed), whether it settled, and when. */
interface Listening {
  readonly made: Promise<(() => Promise<void>) | undefined>;
  settled: boolean;
  /** When it was made (this instance's clock); undefined until then. */
  madeAt?: number;
}

/** A principal's channel, listened to while it has streams here. */
interface Watched {
  count: number;
  readonly listening: Listening;
  /**
   * Its subscription's round: 0 when made, one more each time the subscriber comes back (what
   * was published meanwhile is lost: the other instances hear it as a new listener).
   */
  round: number;
  /**
   * When its subscriber was last lost (this instance's clock), once it came back: calls started
   * since may have reused an id a cancellation told again then was meant for (review16 GAPS-1).
   */
  lostAt?: number;
  /** What looks up what was told on the channel while it was not listened to ({@link FleetChannels.whenListening}). */
  readonly looks: Set<() => void>;
}

/** What the channels bring to their owner (virtual/fleet-streams.ts). */
export interface ChannelHearing {
  /** A message on this instance's own channel, carrying some principal. */
  asks(body: JsonObject): void;
  /** A message on the principal's channel, carrying some principal (the hearer checks which). */
  heard(principalKey: string, body: JsonObject): void;
  /** What was published on it while the subscriber was away is lost. */
  missed(principalKey: string): void;
  /** Its subscription was made (not after close), or made again (`round`: which time, from 0). */
  listened(principalKey: string, round: number): void;
}

/** A store's failure as an error (a rejection may be anything). */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** An instance's own channel: answers to its server requests, and who took them. */
function asksChannel(tag: string): string {
  return `asks:${tag}`;
}

/** The channels of one instance on the shared store (none: nothing is published or heard). */
export class FleetChannels {
  readonly #deps: FleetDeps | undefined;
  /** This instance's id: what it publishes carries it, and it never hears its own. */
  readonly #tag: string;
  readonly #hearing: ChannelHearing;
  readonly #now: () => number;
  readonly #watched = new Map<string, Watched>();
  /** Bytes of each principal's messages on their way to the store. */
  readonly #outgoing: OutgoingBytes;
  /** This instance's own channel, listened to from the start. */
  readonly #own: Listening | undefined;
  #closed = false;

  constructor(deps: FleetDeps | undefined, tag: string, hearing: ChannelHearing, now: () => number) {
    this.#deps = deps;
    this.#tag = tag;
    this.#hearing = hearing;
    this.#now = now;
    // A client's answer the proxy accepted always fits alone.
    const client = Math.max(
      FLEET_LIMITS.principalBytes,
      (deps?.answerBytes ?? 0) + FLEET_LIMITS.answerEnvelope,
    );
    this.#outgoing = new OutgoingBytes(
      { member: FLEET_LIMITS.principalBytes, client },
      FLEET_LIMITS.totalBytes,
    );
    this.#own = deps && this.#listen(asksChannel(tag), (body) => hearing.asks(body));
  }

  /** Whether the store is shared (messages cross). */
  get shared(): boolean {
    return this.#deps !== undefined;
  }

  /**
   * Resolves once this instance hears what is meant for it on its own channel (or its store
   * failed; bounded: a store that does not answer never holds the start).
   */
  async listening(): Promise<void> {
    await Promise.race([this.#own?.made, delay(FLEET_LIMITS.listenMs, undefined, { ref: false })]);
  }

  /**
   * Resolves once the principal's channel, watched here ({@link watch}), is listened to (or its
   * subscription failed; bounded: it resolves after {@link FLEET_LIMITS}.listenMs anyway).
   */
  async listeningTo(principalKey: string): Promise<void> {
    const made = this.#watched.get(principalKey)?.listening.made;
    await Promise.race([made, delay(FLEET_LIMITS.listenMs, undefined, { ref: false })]);
  }

  /**
   * Calls `look` once the principal's channel, watched here, is listened to ({@link listeningTo}),
   * once more when a subscription slower than that wait is made, and each time the subscriber
   * comes back: what was told on the channel before is to be looked up then (a session's end
   * mark). Until the returned function is called.
   */
  whenListening(principalKey: string, look: () => void): () => void {
    const watched = this.#watched.get(principalKey);
    let stopped = false;
    const once = () => stopped || this.#closed || look();
    watched?.looks.add(once);
    const made = watched?.listening.made;
    const late = delay(FLEET_LIMITS.listenMs, true, { ref: false });
    void Promise.race([made?.then(() => false), late]).then((slow) => {
      once();
      if (slow === true) void made?.then(once);
    });
    return () => {
      stopped = true;
      watched?.looks.delete(once);
    };
  }

  /**
   * Since when the principal's channel was heard here for a word told again for subscription
   * `round` (its `n`; this instance's clock), if it is listened to: for round 0, since the
   * subscription was made; for a later round (its subscriber came back), until it was lost only.
   */
  heardSince(principalKey: string, round: unknown): number | undefined {
    const watched = this.#watched.get(principalKey);
    if (watched === undefined) return undefined;
    const later = typeof round === 'number' && round > 0;
    return later ? (watched.lostAt ?? watched.listening.madeAt) : watched.listening.madeAt;
  }

  /**
   * Refcounts the principal's channel: listened to while it has a stream here, or a call or a
   * resumed stream that outlives its connection (until the returned function is called).
   */
  watch(principalKey: string): () => void {
    const deps = this.#deps;
    if (deps === undefined) return () => {};
    let watched = this.#watched.get(principalKey);
    if (watched === undefined) {
      const channel = this.#streamsChannel(principalKey);
      const listening = this.#listen(
        channel,
        (body) => this.#hearing.heard(principalKey, body),
        (awayMs) => this.#cameBack(principalKey, awayMs),
      );
      watched = { count: 0, listening, round: 0, looks: new Set() };
      this.#watched.set(principalKey, watched);
      void listening.made.then((stop) => {
        if (stop !== undefined && !this.#closed) this.#hearing.listened(principalKey, 0);
      });
    }
    const entry = watched;
    entry.count += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.count -= 1;
      if (entry.count > 0 || this.#watched.get(principalKey) !== entry) return;
      this.#watched.delete(principalKey);
      void entry.listening.made
        .then((stop) => stop?.())
        .catch((error: unknown) => deps.onError(asError(error)));
    };
  }

  /**
   * The subscriber to the principal's channel came back (what was published meanwhile is lost):
   * its owner hears so, what is told again for the new round counts as heard until it was lost
   * `awayMs` ago, the other instances hear it as a new listener (they tell again what they keep),
   * and what looks up the lost words does.
   */
  #cameBack(principalKey: string, awayMs: number): void {
    const watched = this.#watched.get(principalKey);
    if (watched === undefined || this.#closed) return;
    watched.round += 1;
    watched.lostAt = this.#now() - awayMs;
    this.#hearing.missed(principalKey);
    this.#hearing.listened(principalKey, watched.round);
    for (const look of [...watched.looks]) look();
  }

  /** The principal's channel: named so that the store holds no one's name (keyed, with a box). */
  #streamsChannel(principalKey: string): string {
    const box = this.#deps?.box;
    const name =
      box === undefined
        ? createHash('sha256').update(principalKey).digest('base64url')
        : box.name(principalKey);
    return `streams:${name}`;
  }

  /**
   * Subscribes to `channel` (the store shared): each message that opens (sealed for it, when
   * sealing), carries a principal and is not this instance's own is heard; `missed` hears that
   * messages may have been lost (the subscriber was away).
   */
  #listen(channel: string, hear: (body: JsonObject) => void, missed?: MissedListener): Listening {
    const deps = this.#deps as FleetDeps;
    const listener = (text: string) => {
      const plain = deps.box === undefined ? text : deps.box.open(channel, text)?.toString('utf8');
      if (plain === undefined) return;
      let body: JsonObject;
      try {
        body = asObject(JSON.parse(plain));
      } catch {
        return;
      }
      // Never this instance's own (a channel it listens to and publishes on).
      if (body.from !== this.#tag && typeof body.p === 'string') hear(body);
    };
    const listening: Listening = {
      made: deps.store.subscribe(channel, listener, missed).then(
        (stop) => stop,
        (error: unknown) => {
          if (!this.#closed) deps.onError(asError(error));
          return undefined;
        },
      ),
      settled: false,
    };
    void listening.made.finally(() => {
      listening.settled = true;
      listening.madeAt = this.#now();
    });
    return listening;
  }

  /**
   * Publishes `body` for `principalKey` on `channel`, counted in its `lane`; false when the
   * lane's bound (or all lanes') is reached, or the store is not shared.
   */
  #publish(principalKey: string, channel: string, body: JsonObject, lane: Lane = 'member'): boolean {
    const deps = this.#deps;
    if (deps === undefined) return false;
    const plain = JSON.stringify({ ...body, from: this.#tag, p: principalKey });
    const release = this.#outgoing.take(principalKey, lane, Buffer.byteLength(plain));
    if (release === undefined) return false;
    const wire = deps.box === undefined ? plain : deps.box.seal(channel, Buffer.from(plain));
    deps.store
      .publish(channel, wire)
      .catch((error: unknown) => deps.onError(asError(error)))
      .finally(release);
    return true;
  }

  /** Publishes `body` for `principalKey` on the instance `tag`'s own channel (as on any channel). */
  publishTo(tag: string, principalKey: string, body: JsonObject, lane?: Lane): boolean {
    return this.#publish(principalKey, asksChannel(tag), body, lane);
  }

  /** Publishes `body` on the principal's own channel (as on any channel). */
  publishFor(principalKey: string, body: JsonObject, lane?: Lane): boolean {
    return this.#publish(principalKey, this.#streamsChannel(principalKey), body, lane);
  }

  /**
   * Stops listening to every channel (the app closes). A subscription still waiting for the
   * store (unreachable) is not waited for: it is undone once made, or fails as the store closes.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const listenings = [this.#own, ...[...this.#watched.values()].map((watched) => watched.listening)];
    this.#watched.clear();
    const undone: Promise<void>[] = [];
    for (const listening of listenings) {
      if (listening === undefined) continue;
      const undo = listening.made.then((stop) => stop?.()).catch(() => {});
      if (listening.settled) undone.push(undo);
    }
    // An unsubscription the store does not answer never holds the close either.
    await Promise.race([Promise.all(undone), delay(FLEET_LIMITS.listenMs, undefined, { ref: false })]);
  }
}
