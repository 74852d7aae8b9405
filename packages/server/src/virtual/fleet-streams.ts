/**
 * @module virtual/fleet-streams
 * Virtual servers' streams across instances sharing the store (issue 20, several instances). Each
 * instance opens its own member sessions for the principals it serves, and a client's requests
 * may come to any instance, so three things cross between them on the store's pub/sub:
 *
 * - what a member sends outside any request goes to the principal's GET streams on every
 *   instance (a channel per principal, listened to only where that principal has a stream here:
 *   each instance judges which members its streams see, by the principal's grants);
 * - a member's server request that no stream here takes is offered there, already under this
 *   instance's id (member-requests.ts): an instance that wrote it to a stream says so; unsaid
 *   within {@link FLEET_LIMITS}.takenMs, it is refused for the client as it would be with no
 *   stream at all;
 * - a client's answer to a server request, which names the instance that asked in its id, goes
 *   to that instance's own channel; the end of a client session (DELETE) ends its streams, and
 *   the calls and resumed streams that outlive their connections, on every instance; a client's
 *   `notifications/cancelled` for a call of its session that is not running here is told to
 *   the other instances (review10 RESUME-5, RESUME-8; told again as virtual/fleet-cancels.ts
 *   says). A principal's channel is listened to while it has a GET stream, or a call or stream
 *   that outlives its connection, here (or a cancellation it keeps), and an instance says so
 *   on it each time it starts listening.
 *
 * Messages are sealed for the channel they travel on (`SESSION_SECRET`, as relay messages are:
 * the box is passed in) and carry the principal, which the hearing side checks against the
 * channel's and never crosses: one principal's messages reach only its own streams, an answer
 * only what waits for that principal. A principal's channel is named by an HMAC of its key under
 * a key of the box's (a hash without `SESSION_SECRET`): a store reader cannot tell whose it is.
 * What one principal has on its way out is bounded in bytes, its members' messages apart from its
 * clients' answers (an answer the proxy accepted always fits alone); an answer that does not fit
 * is refused to the client and answered to the member with an error, never dropped unsaid.
 *
 * The store's subscriber may drop and come back (Redis): what was published meanwhile is lost,
 * so the principal's streams here are ended then (the client opens another; a session ended
 * meanwhile gets 404).
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ProxyError, protocolError, toJsonRpcError } from '../errors.ts';
import {
  asObject,
  isJsonRpcMessage,
  isRequest,
  type JsonObject,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../jsonrpc.ts';
import { throttledWarning } from '../observability/throttled-warning.ts';
import { namespaced, type Store } from '../store/store.ts';
import type { ClientStreams } from './client-streams.ts';
import { FleetCancels } from './fleet-cancels.ts';
import { type Lane, OutgoingBytes } from './fleet-outgoing.ts';
import { type MemberReply, type MemberRequests, waitingKey } from './member-requests.ts';

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
}

/** What a client session's end and cancellations do to the calls running here. */
export interface FleetCalls {
  /** The session ended (on another instance). */
  ended(principalKey: string, session: string): void;
  /**
   * The client cancelled its session's call `id` on the virtual server `name` (on another
   * instance); only a call started by `startedBy` (this instance's clock), when given.
   */
  cancelled(principalKey: string, name: string, session: string, id: RequestId, startedBy?: number): void;
}

/** A store's failure as an error (a rejection may be anything). */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** An instance's own channel: answers to its server requests, and who took them. */
function asksChannel(tag: string): string {
  return `asks:${tag}`;
}

/** The GET streams of virtual servers' clients, on this instance and (a shared store) the others. */
export class FleetStreams {
  readonly #here: ClientStreams;
  readonly #requests: MemberRequests;
  readonly #calls: FleetCalls;
  readonly #deps: FleetDeps | undefined;
  readonly #watched = new Map<string, Watched>();
  /** Bytes of each principal's messages on their way to the store. */
  readonly #outgoing: OutgoingBytes;
  /** Server requests offered to other instances, until one says it took them. */
  readonly #offered = new Map<string, NodeJS.Timeout>();
  /** By principal: how many of {@link #offered} are its members'. */
  readonly #offers = new Map<string, number>();
  readonly #cancels: FleetCancels;
  readonly #now: () => number;
  readonly #own: Listening | undefined;
  #closed = false;

  constructor(
    here: ClientStreams,
    requests: MemberRequests,
    calls: FleetCalls,
    deps?: FleetDeps,
    now: () => number = Date.now,
  ) {
    this.#now = now;
    const channel = {
      tell: (principalKey: string, body: JsonObject) =>
        this.#publish(principalKey, this.#streamsChannel(principalKey), body, 'client'),
      watch: (principalKey: string) => this.watch(principalKey),
    };
    this.#cancels = new FleetCancels(channel, calls, now);
    this.#here = here;
    this.#requests = requests;
    this.#calls = calls;
    this.#deps = deps;
    // A client's answer the proxy accepted always fits alone.
    const client = Math.max(
      FLEET_LIMITS.principalBytes,
      (deps?.answerBytes ?? 0) + FLEET_LIMITS.answerEnvelope,
    );
    this.#outgoing = new OutgoingBytes(
      { member: FLEET_LIMITS.principalBytes, client },
      FLEET_LIMITS.totalBytes,
    );
    this.#own = deps && this.#listen(asksChannel(requests.tag), (body) => this.#hearAsks(body));
  }

  /**
   * Resolves once this instance hears answers meant for it (or its store failed; bounded: a
   * store that does not answer never holds the start).
   */
  async listening(): Promise<void> {
    await Promise.race([this.#own?.made, delay(FLEET_LIMITS.listenMs, undefined, { ref: false })]);
  }

  /**
   * Opens a stream here ({@link ClientStreams.open}); `ready` resolves once the stream also hears
   * what the principal's member sessions on other instances send (bounded: it opens anyway).
   */
  open(...stream: Parameters<ClientStreams['open']>): {
    readonly close: () => void;
    readonly ready: Promise<void>;
  } {
    const { principalKey } = stream[0];
    const close = this.#here.open(...stream);
    const release = this.watch(principalKey);
    return {
      close: () => {
        close();
        release();
      },
      ready: this.listeningTo(principalKey),
    };
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
   * and once more when a subscription slower than that wait is made: what was told on the channel
   * before is to be looked up then (a session's end mark).
   */
  whenListening(principalKey: string, look: () => void): void {
    const made = this.#watched.get(principalKey)?.listening.made;
    const late = delay(FLEET_LIMITS.listenMs, true, { ref: false });
    void Promise.race([made?.then(() => false), late]).then((slow) => {
      look();
      if (slow === true) void made?.then(() => this.#closed || look());
    });
  }

  /**
   * Ends the streams of the client session `session` of `principalKey` here, and what the session
   * has on the other instances (its streams, its calls: {@link FleetCalls.ended}).
   */
  end(principalKey: string, session: string): void {
    this.#here.end(principalKey, session);
    this.#publish(principalKey, this.#streamsChannel(principalKey), { t: 'end', session }, 'client');
  }

  /**
   * Tells the other instances the client cancelled its session's call `id` (none runs here), and
   * again as an instance starts listening (virtual/fleet-cancels.ts; a DELETE needs no second
   * word: its mark in the store is looked at once listening).
   */
  cancel(principalKey: string, name: string, session: string, id: RequestId): void {
    this.#cancels.pass(principalKey, name, session, id);
  }

  /** After a reload ({@link ClientStreams.refresh}; each instance refreshes its own). */
  refresh(): void {
    this.#here.refresh();
  }

  /**
   * A member's message outside any request (what {@link ClientStreams.deliver} returns): a
   * notification goes to the streams here and is told to the other instances; a server request
   * no stream here takes is offered to them (refused later when none takes it).
   */
  deliver(principalKey: string, member: string, message: JsonRpcMessage, reply: MemberReply): boolean {
    const taken = this.#here.deliver(principalKey, member, message, reply);
    if (this.#deps === undefined) return taken;
    if (!isRequest(message)) {
      this.#publish(principalKey, this.#streamsChannel(principalKey), { t: 'member', member, message });
      return true;
    }
    return taken || this.#offer(principalKey, member, message, reply);
  }

  /**
   * A client's answer to a server request that nothing here waits for: sent to the instance
   * whose id it carries. False when the id is this instance's or no instance's. When it cannot
   * be sent (too much of the principal's is on its way), the member is answered with an error
   * instead and the client is refused (`overloaded`, thrown): an accepted answer is never lost.
   */
  answer(principalKey: string, name: string, response: JsonRpcResponse, asker: string | undefined): boolean {
    if (asker === undefined || asker === this.#requests.tag) return false;
    const channel = asksChannel(asker);
    if (this.#publish(principalKey, channel, { t: 'answer', name, response }, 'client')) return true;
    const refusal = new ProxyError(
      'overloaded',
      'The answer could not be passed on to the proxy instance that asked for it (too much is on its way there): the server that asked was told so.',
      { data: { limit: 'fleetAnswerBytes' } },
    );
    if (response.id !== null) {
      const failed = toJsonRpcError(refusal, response.id);
      this.#publish(principalKey, channel, { t: 'answer', name, response: failed }, 'client');
    }
    throw refusal;
  }

  /**
   * Stops listening (the app closes). A subscription still waiting for the store (unreachable)
   * is not waited for: it is undone once made, or fails as the store closes.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#offered.values()) clearTimeout(timer);
    this.#offered.clear();
    this.#cancels.clear();
    this.#offers.clear();
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

  #offer(principalKey: string, member: string, message: JsonRpcRequest, reply: MemberReply): boolean {
    const offers = this.#offers.get(principalKey) ?? 0;
    if (offers >= FLEET_LIMITS.principalOffers) return false;
    const asked = this.#requests.askElsewhere(principalKey, message, reply);
    if (asked === undefined) return false;
    const offer = { t: 'member', member, message: asked };
    if (!this.#publish(principalKey, this.#streamsChannel(principalKey), offer)) {
      this.#requests.untaken(principalKey, asked.id);
      return false;
    }
    const key = waitingKey(principalKey, asked.id);
    const timer = setTimeout(() => {
      this.#settled(principalKey, key);
      const waiting = this.#requests.untaken(principalKey, asked.id);
      // As a held session with no stream open refuses it (MCP: a request gets a response).
      const refusal = `No connected client can answer "${message.method}" right now.`;
      waiting?.reply(protocolError(waiting.id, 'method_not_found', refusal)).catch(() => {});
    }, FLEET_LIMITS.takenMs);
    timer.unref();
    this.#offered.set(key, timer);
    this.#offers.set(principalKey, offers + 1);
    return true;
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
        (body) => this.#hearStreams(principalKey, body),
        // What was published while the subscriber was away is lost (a session's end, a list
        // change, a server request offered): the streams end, and their clients open them again.
        () => this.#here.end(principalKey),
      );
      watched = { count: 0, listening };
      this.#watched.set(principalKey, watched);
      void listening.made.then((stop) => {
        if (stop !== undefined && !this.#closed) this.#cancels.listened(principalKey);
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
   * Subscribes to `channel`: each message that opens (sealed for it, when sealing) is heard;
   * `missed` hears that messages may have been lost (the subscriber was away).
   */
  #listen(channel: string, hear: (body: JsonObject) => void, missed?: () => void): Listening {
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
      if (body.from !== this.#requests.tag && typeof body.p === 'string') hear(body);
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

  /** A principal's channel: its member sessions elsewhere, or the end of one of its sessions. */
  #hearStreams(principalKey: string, body: JsonObject): void {
    // The channel is named by a hash: the principal it carries must be the one listened for.
    if (body.p !== principalKey) return;
    if (body.t === 'end' && typeof body.session === 'string') {
      this.#here.end(principalKey, body.session);
      this.#calls.ended(principalKey, body.session);
    }
    if (body.t === 'cancel')
      this.#cancels.heard(principalKey, body, this.#watched.get(principalKey)?.listening.madeAt);
    if (body.t === 'listening') this.#cancels.retell(principalKey, body.from);
    if (body.t !== 'member' || typeof body.member !== 'string' || !isJsonRpcMessage(body.message)) return;
    const name = this.#here.heard(principalKey, body.member, body.message);
    if (name !== undefined && isRequest(body.message) && typeof body.from === 'string') {
      const taken = { t: 'taken', id: body.message.id, name };
      this.#publish(principalKey, asksChannel(body.from), taken, 'client');
    }
  }

  /** This instance's channel: a client's answer to its server request, or who asked it. */
  #hearAsks(body: JsonObject): void {
    const principalKey = body.p as string;
    if (typeof body.name !== 'string') return;
    if (body.t === 'answer' && isJsonRpcMessage(body.response) && !('method' in body.response))
      this.#requests.answer(principalKey, body.name, body.response);
    if (body.t === 'taken' && (typeof body.id === 'string' || typeof body.id === 'number'))
      this.#took(principalKey, body.id, body.name);
  }

  #took(principalKey: string, id: RequestId, name: string): void {
    if (!this.#requests.taken(principalKey, id, name)) return;
    this.#settled(principalKey, waitingKey(principalKey, id));
  }

  /** An offered request was taken, or its time to be taken ran out. */
  #settled(principalKey: string, key: string): void {
    const timer = this.#offered.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#offered.delete(key);
    const left = (this.#offers.get(principalKey) ?? 1) - 1;
    if (left > 0) this.#offers.set(principalKey, left);
    else this.#offers.delete(principalKey);
  }

  /**
   * Publishes `body` for `principalKey` on `channel`, counted in its `lane`; false when the
   * lane's bound (or all lanes') is reached.
   */
  #publish(principalKey: string, channel: string, body: JsonObject, lane: Lane = 'member'): boolean {
    const deps = this.#deps;
    if (deps === undefined) return false;
    const plain = JSON.stringify({ ...body, from: this.#requests.tag, p: principalKey });
    const release = this.#outgoing.take(principalKey, lane, Buffer.byteLength(plain));
    if (release === undefined) return false;
    const wire = deps.box === undefined ? plain : deps.box.seal(channel, Buffer.from(plain));
    deps.store
      .publish(channel, wire)
      .catch((error: unknown) => deps.onError(asError(error)))
      .finally(release);
    return true;
  }
}
