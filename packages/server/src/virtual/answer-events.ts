/**
 * @module virtual/answer-events
 * The events of a 2025-era client session's answer streams (issue 20; MCP 2025-11-25
 * "Resumability and Redelivery"): every event the proxy sends on a resumable stream is kept, in
 * the shared store, so a client that lost the stream (or was asked to poll) resumes it with a GET
 * carrying `Last-Event-ID`, on this instance or any other sharing the store. The log is one value
 * per client session, bounded in events and bytes (the oldest dropped first) and expiring with
 * the session. An event id names its stream and position and carries a tag keyed by the session's
 * secret name (never shown: the client holds it sealed), so an id is worth nothing in another
 * session, or to another principal, and cannot be guessed.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import { type Store, storeFailure } from '../store/store.ts';

/** Events one client session keeps for resumption; past it the oldest are dropped. */
export const MAX_EVENTS_PER_SESSION = 256;
/** Bytes of messages one client session keeps for resumption; past it the oldest are dropped. */
export const MAX_EVENT_BYTES_PER_SESSION = 256 * 1024;
/**
 * Session logs one principal may start per day (a session lasts a day at most); past it its
 * answer streams are not kept (served, not resumable): a principal's bytes in the store stay
 * within this many times {@link MAX_EVENT_BYTES_PER_SESSION}.
 */
export const LOGS_PER_PRINCIPAL = 32;
/** The window of {@link LOGS_PER_PRINCIPAL}: a session's lifetime. */
const LOG_WINDOW_MS = 24 * 60 * 60_000;
/** Resumed streams one client session may have open on one instance at once (409 past it). */
export const MAX_RESUMES_PER_SESSION = 8;
/** Writers losing the compare-and-set to another instance in a row before an append gives up. */
const MAX_APPEND_TRIES = 8;
/** Characters of the tag an event id carries (base64url of HMAC-SHA-256: 132 bits). */
const TAG_LENGTH = 22;

/** The client session a log belongs to: its secret name, when it expires, and its principal. */
export interface LoggedSession {
  readonly key: string;
  readonly expiresAt: number;
  readonly principalKey: string;
}

/** One kept event: stream, position, the message (JSON; '' the priming event; null the end). */
interface Logged {
  readonly s: string;
  readonly n: number;
  readonly m: string | null;
}

/** Where a `Last-Event-ID` points: a stream of the session and a position on it. */
export interface EventCursor {
  readonly stream: string;
  readonly seq: number;
}

/** The events of a stream after a cursor: what to replay, and whether the stream has ended. */
export interface Replay {
  readonly events: ReadonlyArray<{
    readonly seq: number;
    readonly id: string;
    readonly message: JsonRpcMessage;
  }>;
  /** Whether the stream's end is among them. */
  readonly ended: boolean;
}

/** What {@link AnswerEvents} needs. */
export interface AnswerEventsDeps {
  /** A namespaced view of the shared store, where the logs live and changes are announced. */
  readonly store: Store;
  /** Clock in milliseconds; default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** The logs of client sessions' answer streams. */
export class AnswerEvents {
  readonly #store: Store;
  readonly #now: () => number;
  /** Appends of this instance, chained per session log: its own writers never race each other. */
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Resumed streams open here, per session log. */
  readonly #watching = new Map<string, number>();

  constructor(deps: AnswerEventsDeps) {
    this.#store = deps.store;
    this.#now = deps.now ?? Date.now;
  }

  /** A new stream name (random: one session's streams say nothing of another's). */
  newStream(): string {
    return randomBytes(9).toString('base64url');
  }

  /** The event id of position `seq` on `stream` of `session`. */
  idOf(session: LoggedSession, stream: string, seq: number): string {
    return `${stream}.${seq}.${tagOf(session.key, stream, seq)}`;
  }

  /** Where `id` points in `session`; undefined when it is no id of this session's. */
  cursorOf(session: LoggedSession, id: string): EventCursor | undefined {
    const [stream, position, tag, ...rest] = id.split('.');
    if (stream === undefined || position === undefined || tag === undefined || rest.length > 0)
      return undefined;
    const seq = Number(position);
    if (!/^\d{1,9}$/.test(position) || !Number.isSafeInteger(seq)) return undefined;
    const expected = Buffer.from(tagOf(session.key, stream, seq));
    const given = Buffer.from(tag);
    return given.length === expected.length && timingSafeEqual(given, expected) ? { stream, seq } : undefined;
  }

  /**
   * Keeps the events `messages` (undefined: the priming event; null: the stream's end) at the
   * positions from `seq` on; resolves once stored. Throws `store_unavailable`/`store_full`.
   */
  append(
    session: LoggedSession,
    stream: string,
    seq: number,
    messages: ReadonlyArray<JsonRpcMessage | undefined | null>,
  ): Promise<void> {
    const key = logKey(session.key);
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(() =>
        this.#write(
          session,
          key,
          messages.map((message, index) => ({
            s: stream,
            n: seq + index,
            m: message === undefined ? '' : message === null ? null : JSON.stringify(message),
          })),
        ),
      );
    this.#chains.set(key, next);
    void next
      .finally(() => {
        if (this.#chains.get(key) === next) this.#chains.delete(key);
      })
      .catch(() => {});
    return next;
  }

  /**
   * The events of the cursor's stream after it; undefined when they cannot all be given (the
   * session's log expired, or dropped some of them, or never had the stream).
   */
  async after(session: LoggedSession, cursor: EventCursor): Promise<Replay | undefined> {
    const kept = parseLog(await this.#read(logKey(session.key))).filter((event) => event.s === cursor.stream);
    const first = kept[0];
    // Nothing kept of the stream, or a gap between the cursor and what is kept: not resumable.
    if (first === undefined || first.n > cursor.seq + 1) return undefined;
    const events: Array<{ seq: number; id: string; message: JsonRpcMessage }> = [];
    let ended = false;
    for (const event of kept) {
      if (event.n <= cursor.seq) continue;
      if (event.m === null) ended = true;
      else if (event.m !== '')
        events.push({
          seq: event.n,
          id: this.idOf(session, cursor.stream, event.n),
          message: JSON.parse(event.m),
        });
    }
    return { events, ended };
  }

  /** Milliseconds until `session` (and its log) expires. */
  expiresInMs(session: LoggedSession): number {
    return Math.max(0, session.expiresAt - this.#now());
  }

  /**
   * Listens for appends to `session`'s log (any instance's); resolves to what stops listening.
   * Past {@link MAX_RESUMES_PER_SESSION} listening here: `stream_conflict`.
   */
  async watch(session: LoggedSession, listener: () => void): Promise<() => Promise<void>> {
    const key = logKey(session.key);
    const watching = this.#watching.get(key) ?? 0;
    if (watching >= MAX_RESUMES_PER_SESSION)
      throw new ProxyError('stream_conflict', 'Too many resumed streams are open in this session.');
    this.#watching.set(key, watching + 1);
    const release = () => {
      const left = (this.#watching.get(key) ?? 1) - 1;
      if (left > 0) this.#watching.set(key, left);
      else this.#watching.delete(key);
    };
    let stop: () => Promise<void>;
    try {
      stop = await this.#store.subscribe(key, listener, listener);
    } catch (error) {
      release();
      throw storeFailure(error);
    }
    let stopped = false;
    return () => {
      if (!stopped) release();
      stopped = true;
      return stop();
    };
  }

  async #write(session: LoggedSession, key: string, added: readonly Logged[]): Promise<void> {
    const ttlMs = session.expiresAt - this.#now();
    if (ttlMs <= 0) return;
    for (let tries = 0; tries < MAX_APPEND_TRIES; tries++) {
      const before = await this.#read(key);
      const value = JSON.stringify(bounded([...parseLog(before), ...added]));
      let stored: boolean;
      try {
        if (before === undefined) await this.#countNewLog(session);
        stored =
          before === undefined
            ? await this.#store.setIfAbsent(key, value, ttlMs)
            : await this.#store.replaceIf(key, before, value, ttlMs);
      } catch (error) {
        throw ProxyError.is(error) ? error : storeFailure(error);
      }
      if (stored) {
        // Announced for resumed streams waiting on this log, here or on another instance.
        await this.#store.publish(key, '').catch(() => {});
        return;
      }
    }
    throw storeFailure(new Error('the answer events of a session kept changing under its writer'));
  }

  /** Counts a log `session`'s principal starts; throws `rate_limited` past {@link LOGS_PER_PRINCIPAL}. */
  async #countNewLog(session: LoggedSession): Promise<void> {
    // The principal's key (a subject, for OIDC) is hashed: the store holds no one's name.
    const principal = createHash('sha256').update(session.principalKey).digest('base64url');
    const { count } = await this.#store.hit(`logs:${principal}`, LOG_WINDOW_MS);
    if (count > LOGS_PER_PRINCIPAL)
      throw new ProxyError('rate_limited', 'Too many resumable sessions today.');
  }

  /** Forgets `session`'s log (the session was ended). */
  async forget(session: LoggedSession): Promise<void> {
    await this.#store.delete(logKey(session.key)).catch(() => false);
  }

  async #read(key: string): Promise<string | undefined> {
    try {
      return await this.#store.get(key);
    } catch (error) {
      throw storeFailure(error);
    }
  }
}

/** The newest events within {@link MAX_EVENTS_PER_SESSION} and {@link MAX_EVENT_BYTES_PER_SESSION}. */
function bounded(events: readonly Logged[]): Logged[] {
  let bytes = 0;
  let from = events.length;
  while (from > 0) {
    const event = events[from - 1] as Logged;
    const size = (event.m?.length ?? 0) + event.s.length + 16;
    if (events.length - from >= MAX_EVENTS_PER_SESSION || bytes + size > MAX_EVENT_BYTES_PER_SESSION) break;
    bytes += size;
    from--;
  }
  return events.slice(from);
}

/** The events of a stored log; an unreadable one is none (it is only ever written here). */
function parseLog(value: string | undefined): Logged[] {
  if (value === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? (parsed as Logged[]) : [];
  } catch {
    return [];
  }
}

/** The store key (and channel) of a session's log: a hash, so the store never holds the key. */
function logKey(sessionKey: string): string {
  return createHash('sha256').update(`answer-events:${sessionKey}`).digest('base64url');
}

/** The tag of an event id: keyed by the session's secret name. */
function tagOf(sessionKey: string, stream: string, seq: number): string {
  return createHmac('sha256', sessionKey).update(`${stream}.${seq}`).digest('base64url').slice(0, TAG_LENGTH);
}
