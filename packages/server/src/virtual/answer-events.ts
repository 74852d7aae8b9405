/**
 * @module virtual/answer-events
 * The events of a 2025-era client session's answer streams (issue 20; MCP 2025-11-25
 * "Resumability and Redelivery"): every event the proxy sends on a resumable stream is kept, in
 * the shared store, so a client that lost the stream (or was asked to poll) resumes it with a GET
 * carrying `Last-Event-ID`, on this instance or any other sharing the store. The log is kept
 * append-only (virtual/answer-log.ts), per client session, bounded in events and bytes (the
 * oldest dropped first) and expiring with the session; an append is announced with its slots,
 * and a resumed stream reads only those. A stream silent past the upstream deadline (and some
 * slack) is dead (its writer gone): it is not resumed. An event id names its stream and position
 * and carries a tag keyed by the session's secret name (never shown: the client holds it
 * sealed), so an id is worth nothing in another session, or to another principal, and cannot be
 * guessed.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import { type Store, storeFailure } from '../store/store.ts';
import {
  decode,
  encode,
  grown,
  keptSlots,
  type Logged,
  parseHead,
  sizeOf,
  slotKey,
  TOMBSTONE,
} from './answer-log.ts';

/**
 * Session logs one principal may start per day (a session lasts a day at most); past it its
 * answer streams are not kept (served, not resumable): a principal's bytes in the store stay
 * within this many times the bytes one session keeps.
 */
export const LOGS_PER_PRINCIPAL = 32;
/** The window of {@link LOGS_PER_PRINCIPAL}: a session's lifetime. */
const LOG_WINDOW_MS = 24 * 60 * 60_000;
/** The purpose (HKDF label) of the key that names principals' answer logs: no other use's key. */
export const ANSWER_LOGS_PURPOSE = 'mcp-proxy virtual answer logs v1';
/** Resumed streams one client session may have open on one instance at once (409 past it). */
export const MAX_RESUMES_PER_SESSION = 8;
/** Writers losing the compare-and-set to another instance in a row before an append gives up. */
const MAX_APPEND_TRIES = 8;
/** Characters of the tag an event id carries (base64url of HMAC-SHA-256: 132 bits). */
const TAG_LENGTH = 22;
/** Past the upstream deadline, how long a silent stream is still waited for (clocks, queues). */
export const DEAD_STREAM_SLACK_MS = 5_000;

/** The client session a log belongs to: its secret name, when it expires, and its principal. */
export interface LoggedSession {
  readonly key: string;
  readonly expiresAt: number;
  readonly principalKey: string;
}

/** Where a `Last-Event-ID` points: a stream of the session and a position on it. */
export interface EventCursor {
  readonly stream: string;
  readonly seq: number;
}

/** Events of a stream: what to replay, whether the stream has ended, and what they follow. */
export interface Replay {
  readonly events: ReadonlyArray<{
    readonly seq: number;
    readonly id: string;
    readonly message: JsonRpcMessage;
  }>;
  /** Whether the stream's end is among them. */
  readonly ended: boolean;
  /** The first position these events (and the ones skipped, at or before the cursor) hold. */
  readonly from: number;
  /** When the stream, silent since, is taken for dead (its writer gone). */
  readonly deadline: number;
}

/** What {@link AnswerEvents} needs. */
export interface AnswerEventsDeps {
  /** A namespaced view of the shared store, where the logs live and changes are announced. */
  readonly store: Store;
  /** How long an upstream call may take (UPSTREAM_TIMEOUT_MS): a stream silent for twice that is dead. */
  readonly upstreamTimeoutMs: number;
  /** Clock in milliseconds; default `Date.now`. */
  readonly now?: (() => number) | undefined;
  /**
   * A keyed name for a principal's key (an HMAC under a key derived from `SESSION_SECRET` for
   * {@link ANSWER_LOGS_PURPOSE}); none: its SHA-256, which a store reader can match to a key it
   * guesses (`static:<hash of a token>`, `oidc:<issuer>#<sub>`).
   */
  readonly name?: ((principalKey: string) => string) | undefined;
  /**
   * Whether the client session keyed `key` was ended (client-sessions.ts keeps that mark): a log
   * is not begun for an ended session, so its end needs no mark of this module's own.
   */
  readonly ended?: ((key: string) => Promise<boolean>) | undefined;
}

/** The logs of client sessions' answer streams. */
export class AnswerEvents {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #silenceMs: number;
  readonly #ended: (key: string) => Promise<boolean>;
  readonly #name: (principalKey: string) => string;
  /** Appends of this instance, chained per session log: its own writers never race each other. */
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Resumed streams open here, per session log. */
  readonly #watching = new Map<string, number>();

  constructor(deps: AnswerEventsDeps) {
    this.#store = deps.store;
    this.#now = deps.now ?? Date.now;
    this.#ended = deps.ended ?? (async () => false);
    this.#name = deps.name ?? principalHash;
    // A member's session may be opened first (initialize), then called: each has the deadline.
    this.#silenceMs = 2 * deps.upstreamTimeoutMs + DEAD_STREAM_SLACK_MS;
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
   * positions from `seq` on; resolves once stored (at once when the session was ended). Throws
   * `store_unavailable`/`store_full`.
   */
  append(
    session: LoggedSession,
    stream: string,
    seq: number,
    messages: ReadonlyArray<JsonRpcMessage | undefined | null>,
  ): Promise<void> {
    const key = this.#logKey(session);
    const d = this.#now() + this.#silenceMs;
    const added = messages.map((message, index) => ({
      s: stream,
      n: seq + index,
      m: message === undefined ? '' : message === null ? null : JSON.stringify(message),
      d,
    }));
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.#write(session, key, added));
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
   * session's log expired, or dropped some of them, or never had the stream, or the stream died
   * without its end).
   */
  async after(session: LoggedSession, cursor: EventCursor): Promise<Replay | undefined> {
    const key = this.#logKey(session);
    const head = parseHead(await this.#read(key));
    const values = await Promise.all(keptSlots(head).map((slot) => this.#read(slotKey(key, slot))));
    const replay = await this.#replayOf(session, cursor, values);
    // A gap between the cursor and what is kept, or a stream dead before its end: not resumable.
    if (replay === undefined || replay.from > cursor.seq + 1) return undefined;
    return replay.ended || replay.deadline > this.#now() ? replay : undefined;
  }

  /** Milliseconds until `at` (0 once past). */
  msUntil(at: number): number {
    return Math.max(0, at - this.#now());
  }

  /** Milliseconds until `session` (and its log) expires. */
  expiresInMs(session: LoggedSession): number {
    return this.msUntil(session.expiresAt);
  }

  /**
   * Listens for appends to `session`'s log (any instance's): `listener` hears, in order, the
   * events each append adds to the cursor's stream; `missed`, that some may not have been heard
   * (re-read the log). Resolves to what stops listening. Past {@link MAX_RESUMES_PER_SESSION}
   * listening here: `stream_conflict`.
   */
  async watch(
    session: LoggedSession,
    cursor: EventCursor,
    listener: (replay: Replay) => void,
    missed: () => void,
  ): Promise<() => Promise<void>> {
    const key = this.#logKey(session);
    const watching = this.#watching.get(key) ?? 0;
    if (watching >= MAX_RESUMES_PER_SESSION)
      throw new ProxyError('stream_conflict', 'Too many resumed streams are open in this session.');
    this.#watching.set(key, watching + 1);
    const release = () => {
      const left = (this.#watching.get(key) ?? 1) - 1;
      if (left > 0) this.#watching.set(key, left);
      else this.#watching.delete(key);
    };
    // Decoded one after another: the listener hears appends in the order they were announced.
    let decoded = Promise.resolve();
    const heard = (message: string) => {
      const slots = parseSlots(message);
      if (slots === undefined) return missed();
      // Only the slots announced are read: what the listener has is not read again.
      decoded = decoded
        .then(() => Promise.all(slots.map((slot) => this.#read(slotKey(key, slot)))))
        .then((values) => this.#replayOf(session, { stream: cursor.stream, seq: -1 }, values))
        .then((replay) => replay && listener(replay))
        .catch(missed);
    };
    let stop: () => Promise<void>;
    try {
      stop = await this.#store.subscribe(key, heard, missed);
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

  /** Forgets `session`'s log (the session was ended): its head becomes a tombstone. */
  async forget(session: LoggedSession): Promise<void> {
    const key = this.#logKey(session);
    const ttlMs = this.expiresInMs(session);
    for (let tries = 0; tries < MAX_APPEND_TRIES && ttlMs > 0; tries++) {
      // A read that fails is tried again (then the log is deleted below), never taken for "none".
      const before = await this.#store.get(key).then(
        (value) => ({ value }),
        () => undefined,
      );
      if (before === undefined) continue;
      return await this.#tombstone(key, before.value, ttlMs);
    }
    await this.#store.delete(key).catch(() => false);
  }

  /** Turns the head `before` of the log under `key` into a tombstone (nothing when none is there). */
  async #tombstone(key: string, before: string | undefined, ttlMs: number): Promise<void> {
    for (let tries = 0; tries < MAX_APPEND_TRIES; tries++) {
      // No log yet: none is begun for an ended session (#write), so nothing needs marking; one
      // mark per ended session (the client session's own) keeps a principal's churn bounded.
      if (before === undefined) return;
      const head = parseHead(before);
      if (head.x === 1) return;
      const stored = await this.#store.replaceIf(key, before, TOMBSTONE, ttlMs).catch(() => false);
      if (stored) {
        this.#drop(key, head.f, head.t - head.f);
        // Resumed streams re-read, find nothing, and end.
        await this.#store.publish(key, '').catch(() => {});
        return;
      }
      before = await this.#store.get(key).catch(() => before);
    }
    await this.#store.delete(key).catch(() => false);
  }

  async #write(session: LoggedSession, key: string, added: readonly Logged[]): Promise<void> {
    const ttlMs = session.expiresAt - this.#now();
    if (ttlMs <= 0) return;
    const values = await Promise.all(added.map(encode));
    const sizes = values.map(sizeOf);
    for (let tries = 0; tries < MAX_APPEND_TRIES; tries++) {
      const before = await this.#read(key);
      const head = parseHead(before);
      // The session was ended: its log is not made again.
      if (head.x === 1) return;
      let dropped: number;
      try {
        const grew = await grown(head, sizes, (slot) => this.#slotSize(key, slot));
        dropped = grew.dropped;
        const next = JSON.stringify(grew.head);
        if (before === undefined) {
          if (await this.#ended(session.key)) return;
          await this.#countNewLog(session);
        }
        const stored =
          before === undefined
            ? await this.#store.setIfAbsent(key, next, ttlMs)
            : await this.#store.replaceIf(key, before, next, ttlMs);
        if (!stored) continue;
        await Promise.all(
          values.map((value, index) => this.#store.set(slotKey(key, head.t + index), value, ttlMs)),
        );
        // The session may have ended between the check and the new log (its forget found none).
        if (before === undefined && (await this.#ended(session.key))) {
          return await this.#tombstone(key, next, ttlMs);
        }
      } catch (error) {
        throw ProxyError.is(error) ? error : storeFailure(error);
      }
      this.#drop(key, head.f, dropped);
      // Announced, with its slots, to resumed streams waiting on this log, here or elsewhere.
      await this.#store.publish(key, `${head.t}:${values.length}`).catch(() => {});
      return;
    }
    throw storeFailure(new Error('the answer events of a session kept changing under its writer'));
  }

  /** The store bytes of slot `slot` of the log under `key` (undefined: it holds nothing). */
  async #slotSize(key: string, slot: number): Promise<number | undefined> {
    const value = await this.#store.get(slotKey(key, slot));
    return value === undefined ? undefined : sizeOf(value);
  }

  /** Removes `count` slots of the log under `key` from `first` on (no longer in its head). */
  #drop(key: string, first: number, count: number): void {
    for (let slot = first; slot < first + count; slot++)
      void this.#store.delete(slotKey(key, slot)).catch(() => false);
  }

  /** The events of `cursor`'s stream among slot `values`; undefined when none is of it. */
  async #replayOf(
    session: LoggedSession,
    cursor: EventCursor,
    values: ReadonlyArray<string | undefined>,
  ): Promise<Replay | undefined> {
    const events: Array<{ seq: number; id: string; message: JsonRpcMessage }> = [];
    let ended = false;
    let from = Number.POSITIVE_INFINITY;
    let deadline = 0;
    for (const value of values) {
      const event = value === undefined ? undefined : await decode(value, cursor.stream, cursor.seq);
      if (event === undefined) continue;
      from = Math.min(from, event.n);
      deadline = Math.max(deadline, event.d);
      if (event.n <= cursor.seq) continue;
      if (event.m === null) ended = true;
      else if (event.m !== '')
        events.push({
          seq: event.n,
          id: this.idOf(session, cursor.stream, event.n),
          message: JSON.parse(event.m),
        });
    }
    return from === Number.POSITIVE_INFINITY ? undefined : { events, ended, from, deadline };
  }

  /** Counts a log `session`'s principal starts; throws `rate_limited` past {@link LOGS_PER_PRINCIPAL}. */
  async #countNewLog(session: LoggedSession): Promise<void> {
    const { count } = await this.#store.hit(`logs:${this.#name(session.principalKey)}`, LOG_WINDOW_MS);
    if (count > LOGS_PER_PRINCIPAL)
      throw new ProxyError('rate_limited', 'Too many resumable sessions today.');
  }

  /**
   * The store key (and channel) of a session's log: hashes, so the store never holds the session's
   * key nor the principal's; grouped by principal (`<principal>/<session>`), so a bounded store
   * can bound each principal's logs (store/open-store.ts memoryStore).
   */
  #logKey(session: LoggedSession): string {
    const log = createHash('sha256').update(`answer-events:${session.key}`).digest('base64url');
    return `${this.#name(session.principalKey)}/${log}`;
  }

  async #read(key: string): Promise<string | undefined> {
    try {
      return await this.#store.get(key);
    } catch (error) {
      throw storeFailure(error);
    }
  }
}

/** The slots an append announced (`<first>:<count>`); undefined when it names none (re-read). */
function parseSlots(message: string): number[] | undefined {
  const match = /^(\d{1,15}):(\d{1,3})$/.exec(message);
  if (match === null) return undefined;
  const first = Number(match[1]);
  return keptSlots({ f: first, t: first + Number(match[2]), b: 0 });
}

/** The principal's key (a subject, for OIDC) hashed, without `SESSION_SECRET`. */
function principalHash(principalKey: string): string {
  return createHash('sha256').update(principalKey).digest('base64url');
}

/** The tag of an event id: keyed by the session's secret name. */
function tagOf(sessionKey: string, stream: string, seq: number): string {
  return createHmac('sha256', sessionKey).update(`${stream}.${seq}`).digest('base64url').slice(0, TAG_LENGTH);
}
