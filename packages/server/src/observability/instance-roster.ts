/**
 * @module observability/instance-roster
 * Every live instance on the status page (issue 21). With a shared store (Redis, or the workers'
 * embedded cluster store) each instance publishes its counts — open sessions by kind, requests,
 * errors — on one channel every few seconds, and keeps what the others published; an instance
 * not heard from for a few beats is gone from the page. A newcomer hears everyone within one
 * round: an instance that hears an id it does not know answers with its own counts at once.
 *
 * Bounded: at most {@link MAX_INSTANCES} others are kept (a message from a further one waits
 * until an entry expires), and a message that is not the expected shape, or too large, is
 * ignored. The counts are numbers and transport names: nothing secret travels; but whoever can
 * publish to the store could fill the page with made-up instances (pushing real ones off it), so
 * with `SESSION_SECRET` set beats are sealed as relay messages are (http/relay-box.ts, a key of
 * their own), and one that does not open is ignored.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { parseJsonObject } from '../json-object.ts';
import { namespaced, type Store } from '../store/store.ts';
import type { LiveStatus, SessionCounts } from './live-status.ts';
import { throttledWarning } from './throttled-warning.ts';

/** One instance's counts, as published and as the page shows them. */
export interface InstanceCounts {
  /** The id sessions/ownership.ts uses. */
  readonly id: string;
  readonly startedAt: number;
  readonly requests: number;
  readonly errors: number;
  readonly sessions: SessionCounts;
}

/** An instance heard from, on the page. */
export interface InstanceSummary extends InstanceCounts {
  /** When its counts were last heard (this instance's clock); now for the one answering. */
  readonly heardAt: number;
  /** True for the instance that answered the page. */
  readonly self: boolean;
}

/** How often counts are published, and how long an instance not heard from stays listed. */
export interface RosterTiming {
  readonly beatMs: number;
  readonly ttlMs: number;
}

/** The defaults: the page polls every 2 s; three beats missed and an instance is gone. */
export const ROSTER_TIMING: RosterTiming = { beatMs: 2_000, ttlMs: 6_500 };

/** Other instances kept at most. */
export const MAX_INSTANCES = 64;
/** Longest message read (a beat is a few hundred bytes; sealed, base64 and a nonce and tag more). */
const MAX_MESSAGE_CHARS = 4_096;
const MAX_SEALED_CHARS = 6_144;
/** Transport names a beat may carry at most. */
const MAX_KINDS = 8;
/** The channel (in the store's `status:` view). */
const CHANNEL = 'beats';

/** What the roster needs. */
export interface RosterDeps {
  /** A namespaced view of the shared store. */
  readonly store: Store;
  readonly clock: Clock;
  /** This instance's counts now. */
  readonly counts: () => InstanceCounts;
  /** Hears store failures (throttled by the caller). */
  readonly onError: (error: Error) => void;
  readonly timing?: RosterTiming;
  /** Seals and opens beats (`SESSION_SECRET` set); undefined: the store is trusted. */
  readonly box?: BeatBox | undefined;
}

/** Seals messages for a channel and opens them there (http/relay-box.ts's `RelayBox`). */
export interface BeatBox {
  seal(channel: string, plain: Uint8Array): string;
  open(channel: string, sealed: string): Buffer | undefined;
}

/** A published beat: the counts, or that the instance is leaving. */
type Beat = InstanceCounts | { readonly id: string; readonly gone: true };

/** The other live instances' counts, kept from their beats. */
export class InstanceRoster {
  readonly #deps: RosterDeps;
  readonly #timing: RosterTiming;
  readonly #others = new Map<string, InstanceSummary>();
  #stopBeating: (() => void) | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #closed = false;

  /**
   * Publishes `status`'s counts to the instances sharing `store` and shows theirs with it
   * (call only with a shared store); started in the background (a store down is heard later).
   */
  static forStatus(
    status: LiveStatus,
    deps: {
      readonly store: Store;
      readonly clock: Clock;
      readonly logger: Logger;
      /** Seals the beats (`SESSION_SECRET` set: a key of the roster's own); undefined: plain. */
      readonly box: BeatBox | undefined;
    },
  ): InstanceRoster {
    const onError = throttledWarning(
      deps.logger,
      'shared store unreachable: the status page misses other instances',
    );
    const roster = new InstanceRoster({
      store: namespaced(deps.store, 'status:'),
      clock: deps.clock,
      counts: () => status.counts(),
      onError,
      box: deps.box,
    });
    status.showOthers(() => roster.others());
    roster.start().catch(onError);
    return roster;
  }

  constructor(deps: RosterDeps) {
    this.#deps = deps;
    this.#timing = deps.timing ?? ROSTER_TIMING;
  }

  /** Listens for the others' beats, then beats now and every `beatMs` (a store down: never). */
  async start(): Promise<void> {
    const unsubscribe = await this.#deps.store.subscribe(CHANNEL, (message) => this.#heard(message));
    if (this.#closed) return void (await unsubscribe().catch(() => {}));
    this.#unsubscribe = unsubscribe;
    this.#stopBeating = this.#deps.clock.every(this.#timing.beatMs, () => this.#beat());
    this.#beat();
  }

  /** The other instances heard from within the TTL, by id. */
  others(): InstanceSummary[] {
    this.#expire(this.#deps.clock.now());
    return [...this.#others.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Stops beating and tells the others this instance is gone. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#unsubscribe === undefined) return;
    this.#stopBeating?.();
    this.#stopBeating = undefined;
    await this.#publish({ id: this.#deps.counts().id, gone: true });
    await this.#unsubscribe?.().catch(() => {});
  }

  #beat(): void {
    void this.#publish(this.#deps.counts());
  }

  async #publish(beat: Beat): Promise<void> {
    try {
      const text = JSON.stringify(beat);
      const box = this.#deps.box;
      await this.#deps.store.publish(CHANNEL, box ? box.seal(CHANNEL, Buffer.from(text)) : text);
    } catch (error) {
      this.#deps.onError(error as Error);
    }
  }

  #heard(message: string): void {
    const beat = parseBeat(this.#opened(message));
    if (beat === undefined || beat.id === this.#deps.counts().id) return;
    if ('gone' in beat) {
      this.#others.delete(beat.id);
      return;
    }
    const now = this.#deps.clock.now();
    const known = this.#others.has(beat.id);
    if (!known) {
      this.#expire(now);
      if (this.#others.size >= MAX_INSTANCES) return;
    }
    this.#others.set(beat.id, { ...beat, heardAt: now, self: false });
    // A newcomer (or one this instance had given up on) hears this one without waiting a beat.
    if (!known) this.#beat();
  }

  /** The beat's text: opened when sealed (else ''), within the bound either way. */
  #opened(message: string): string {
    const box = this.#deps.box;
    if (box === undefined) return message.length > MAX_MESSAGE_CHARS ? '' : message;
    const plain = message.length > MAX_SEALED_CHARS ? undefined : box.open(CHANNEL, message);
    return plain === undefined || plain.length > MAX_MESSAGE_CHARS ? '' : plain.toString('utf8');
  }

  #expire(now: number): void {
    for (const [id, entry] of this.#others) {
      if (now - entry.heardAt > this.#timing.ttlMs) this.#others.delete(id);
    }
  }
}

/** A beat of the expected shape, or undefined. */
function parseBeat(message: string): Beat | undefined {
  const value = parseJsonObject(message);
  if (value === undefined) return undefined;
  const fields = value as Record<string, unknown>;
  const { id } = fields;
  if (typeof id !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(id)) return undefined;
  if (fields.gone === true) return { id, gone: true };
  const sessions = fields.sessions as Record<string, unknown> | null | undefined;
  const byTransport = typeof sessions === 'object' && sessions !== null ? sessions.byTransport : undefined;
  if (typeof byTransport !== 'object' || byTransport === null) return undefined;
  const kinds = Object.entries(byTransport);
  if (kinds.length > MAX_KINDS || !kinds.every(([kind, n]) => /^[a-z0-9/_-]{1,32}$/.test(kind) && isCount(n)))
    return undefined;
  const numbers = [fields.startedAt, fields.requests, fields.errors, sessions?.webSockets];
  if (!numbers.every(isCount)) return undefined;
  return {
    id,
    startedAt: fields.startedAt as number,
    requests: fields.requests as number,
    errors: fields.errors as number,
    sessions: {
      byTransport: Object.fromEntries(kinds) as Record<string, number>,
      webSockets: sessions?.webSockets as number,
    },
  };
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
