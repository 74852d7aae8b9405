/**
 * @module virtual/list-gather
 * One answer of a virtual server's merged list (review 6, VIRTUAL-2): the members from the
 * cursor's position on are asked together, at most {@link LIST_CONCURRENCY} at a time, under one
 * deadline for the whole answer, so k slow members cost one list deadline, not k. The answer
 * holds the members' pages in configured order: each member that answered before the first one
 * still running (not waited for once there is something to give), up to a member with a next
 * page of its own. At the deadline the members still running are left out (`upstream_timeout`)
 * and the next answer starts at the first member not asked yet. A member that was open yet gave
 * no page in time is remembered for a short while ({@link SlowLists}), as a failed open is.
 */
import { ProxyError } from '../errors.ts';
import type { JsonObject } from '../jsonrpc.ts';
import { TtlCache } from '../ttl-cache.ts';
import type { ListPosition } from './member-names.ts';

/** How many members one list answer asks at the same time. */
export const LIST_CONCURRENCY = 8;
/** How long a member too slow to give a list page is left out of that list without being asked. */
export const SLOW_LIST_BACKOFF_MS = 10_000;
/** At most this many slow members remembered (the oldest forgotten first). */
const MAX_SLOW_LISTS = 10_000;

/** A member's page; why it has none (an error code); undefined: it has no such list. */
export type MemberPage = { readonly result: JsonObject } | { readonly code: string } | undefined;

/** What one answer asks of whom. */
export interface GatherOptions {
  readonly start: ListPosition;
  /** How many members the caller sees (positions count those only). */
  readonly count: number;
  /** Asks the member at `index` for its page at `cursor`; `signal` ends the ask. */
  readonly ask: (index: number, cursor: string | undefined, signal: AbortSignal) => Promise<MemberPage>;
  /** The entries of a member's page the caller may see. */
  readonly entries: (index: number, result: JsonObject) => JsonObject[];
  /** How long the whole answer may take, in milliseconds. */
  readonly deadlineMs: number;
  /** The caller's: its leaving ends the answer at once (and every ask still running). */
  readonly signal?: AbortSignal | undefined;
}

/** One answer's entries, the members left out of it, and where the next one starts. */
export interface GatheredPage {
  readonly items: JsonObject[];
  readonly unavailable: ReadonlyArray<{ readonly index: number; readonly code: string }>;
  readonly next: ListPosition | undefined;
}

interface Ask {
  settled: boolean;
  page: MemberPage;
  readonly done: Promise<void>;
}

/** Gathers one answer of a merged list (see the module comment). */
export async function gatherPage(options: GatherOptions): Promise<GatheredPage> {
  const { start, count, signal } = options;
  const stop = new AbortController();
  const timer = setTimeout(
    () => stop.abort(new ProxyError('upstream_timeout')),
    Math.max(0, options.deadlineMs),
  );
  const leave = () => stop.abort(signal?.reason);
  if (signal?.aborted) leave();
  else signal?.addEventListener('abort', leave, { once: true });
  const stopped = new Promise<void>((resolve) => {
    if (stop.signal.aborted) resolve();
    else stop.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const cursorAt = (index: number) => (index === start.member ? start.cursor : undefined);
  const asks: Ask[] = [];
  const launch = (index: number) => {
    // What an ask ends with once the answer stopped is the stop itself (a cancelled request's
    // error), never the member's answer: it counts as not answered in time.
    const settle = (page: MemberPage) => {
      if (stop.signal.aborted) return;
      ask.page = page;
      ask.settled = true;
    };
    const ask: Ask = {
      settled: false,
      page: undefined,
      done: options
        .ask(index, cursorAt(index), stop.signal)
        .then(settle, () => settle({ code: 'internal_error' })),
    };
    asks.push(ask);
  };
  const items: JsonObject[] = [];
  const unavailable: Array<{ index: number; code: string }> = [];
  const answer = (next: ListPosition | undefined): GatheredPage => ({ items, unavailable, next });
  try {
    for (let index = start.member; index < count; index++) {
      const window = Math.min(count, index + LIST_CONCURRENCY);
      while (!stop.signal.aborted && start.member + asks.length < window) launch(start.member + asks.length);
      const ask = asks[index - start.member];
      // Past the deadline nothing new is asked: the next answer starts here.
      if (ask === undefined) return answer({ member: index, cursor: undefined });
      if (!ask.settled) {
        if (items.length > 0) return answer({ member: index, cursor: cursorAt(index) });
        await Promise.race([ask.done, stopped]);
        // The caller left: nobody reads this answer, and no member is to blame.
        if (signal?.aborted) return answer({ member: index, cursor: cursorAt(index) });
        if (!ask.settled) {
          unavailable.push({ index, code: 'upstream_timeout' });
          continue;
        }
      }
      const page = ask.page;
      if (page === undefined) continue;
      if ('code' in page) {
        unavailable.push({ index, code: page.code });
        continue;
      }
      items.push(...options.entries(index, page.result));
      const own = page.result.nextCursor;
      if (typeof own === 'string') return answer({ member: index, cursor: own });
    }
    return answer(undefined);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', leave);
    // The members still asked are not waited for: their requests are cancelled.
    if (!stop.signal.aborted) stop.abort(new ProxyError('upstream_timeout'));
  }
}

/** Whose list, of which member of which virtual server: [principal, virtual server, member, method]. */
export type SlowListKey = readonly [string, string, string, string];

/**
 * Members that were open yet gave no list page in time, per principal, virtual server, member
 * and list: the next lists leave them out at once for {@link SLOW_LIST_BACKOFF_MS} instead of waiting again.
 * A member still opening is not remembered: its session opens in the background for the next list.
 */
export class SlowLists {
  readonly #slow: TtlCache<string, true>;

  constructor(now?: () => number) {
    this.#slow = new TtlCache({ ttlMs: SLOW_LIST_BACKOFF_MS, maxEntries: MAX_SLOW_LISTS, now });
  }

  /** Whether this member of this virtual server was too slow to give this list lately. */
  has(where: SlowListKey): boolean {
    return this.#slow.get(JSON.stringify(where)) === true;
  }

  /** Remembers this member as too slow to give this list. */
  add(where: SlowListKey): void {
    this.#slow.set(JSON.stringify(where), true);
  }
}
