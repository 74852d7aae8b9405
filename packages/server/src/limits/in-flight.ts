/**
 * @module limits/in-flight
 * Caps on work the proxy holds at once (issue 14, finding 5). A request in flight holds its
 * parsed body, and an upstream the caller chose can stay silent until the upstream timeout, so
 * a rate limit alone lets one token pile up hundreds of parsed bodies. Each request takes a
 * slot from its owner (the caller identity, later any principal) and from the process; a third
 * check sheds new work while the V8 heap is nearly full, whatever filled it, so the process
 * answers 503 instead of dying of heap exhaustion.
 */
import { getHeapStatistics } from 'node:v8';
import { ProxyError } from '../errors.ts';

/** How used and how large the heap is, in bytes. */
export interface HeapReading {
  readonly used: number;
  readonly limit: number;
}

/** The caps, from the `limits` settings. */
export interface InFlightOptions {
  /** Requests one owner may have in flight at once. */
  readonly perOwner: number;
  /** Requests all owners together may have in flight at once. */
  readonly total: number;
  /** New work is refused while the heap is fuller than this percentage of its limit (100: never). */
  readonly shedHeapPercent: number;
}

/** Injectable clock and heap gauge (tests); production reads V8's statistics. */
export interface InFlightDeps {
  readonly heap?: () => HeapReading;
  readonly now?: () => number;
  /** Told of each refusal, by reason (metrics). */
  readonly onRefused?: (reason: 'per_owner' | 'total' | 'heap') => void;
}

/**
 * Reading V8's statistics costs about a microsecond: while the heap is under half the shedding
 * threshold it is read at most once per this interval, above that on every request (a burst of
 * large bodies can fill a small heap within one interval).
 */
const HEAP_SAMPLE_MS = 100;
/**
 * The heap is judged only while other work is in flight. V8 collects garbage when it allocates,
 * not when it idles: after a burst, a heap over the threshold may hold nothing but garbage, and
 * refusing everything would leave nothing to allocate and so never collect it. With no other
 * request in flight the heap holds no request of ours, so one is admitted (a bounded body), and
 * its allocations let V8 find out what is still alive.
 */
const HEAP_JUDGED_ABOVE = 0;
/** What a shed caller is told to wait: long enough for a collection and a few answers. */
const RETRY_AFTER_SECONDS = 2;

/** Gives back a slot taken by {@link InFlightLimits.acquire}. Idempotent. */
export type Release = () => void;

/** Counts requests in flight per owner and in total, and watches the heap. */
export class InFlightLimits {
  readonly #options: InFlightOptions;
  readonly #heap: () => HeapReading;
  readonly #now: () => number;
  readonly #onRefused: (reason: 'per_owner' | 'total' | 'heap') => void;
  readonly #owners = new Map<string, number>();
  #total = 0;
  #sampledAt = Number.NEGATIVE_INFINITY;
  #heapFull = false;
  #heapHigh = false;

  constructor(options: InFlightOptions, deps: InFlightDeps = {}) {
    this.#options = options;
    this.#heap = deps.heap ?? heapGauge(process.execArgv, process.env.NODE_OPTIONS);
    this.#now = deps.now ?? performance.now.bind(performance);
    this.#onRefused = deps.onRefused ?? (() => {});
  }

  /** Requests in flight now, all owners together. */
  get total(): number {
    return this.#total;
  }

  /**
   * Takes a slot for `ownerId`, or throws: `too_many_in_flight` (429) when the owner is at its
   * cap, `overloaded` (503, Retry-After) when the process is at its cap or its heap is nearly full.
   */
  acquire(ownerId: string): Release {
    const { perOwner, total } = this.#options;
    if (this.#total > HEAP_JUDGED_ABOVE && this.#heapIsFull()) this.#refuse('heap');
    if (this.#total >= total) this.#refuse('total');
    const held = this.#owners.get(ownerId) ?? 0;
    if (held >= perOwner) {
      this.#onRefused('per_owner');
      throw new ProxyError('too_many_in_flight', undefined, { data: { limit: perOwner } });
    }
    this.#owners.set(ownerId, held + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#owners.get(ownerId) ?? 1) - 1;
      // Owners with nothing in flight are forgotten, so the map never outgrows the work.
      if (left > 0) this.#owners.set(ownerId, left);
      else this.#owners.delete(ownerId);
    };
  }

  /**
   * Throws `overloaded` while the heap is nearly full. For work already admitted whose cost
   * only shows once its body is parsed: many requests can pass {@link acquire} before any of
   * their bodies has arrived.
   */
  assertHeapRoom(holdsSlot: boolean): void {
    // A caller holding a slot counts itself among the work in flight; one holding none (a /ws
    // frame, a notification) is always judged: only slot-holding requests, one at a time, are
    // let through a full heap.
    const exempt = holdsSlot && this.#total <= HEAP_JUDGED_ABOVE + 1;
    if (!exempt && this.#heapIsFull()) this.#refuse('heap');
  }

  #heapIsFull(): boolean {
    const percent = this.#options.shedHeapPercent;
    if (percent >= 100) return false;
    const now = this.#now();
    if (this.#heapHigh || now - this.#sampledAt >= HEAP_SAMPLE_MS) {
      this.#sampledAt = now;
      const { used, limit } = this.#heap();
      const threshold = (limit * percent) / 100;
      this.#heapHigh = used > threshold / 2;
      this.#heapFull = used > threshold;
    }
    return this.#heapFull;
  }

  #refuse(reason: 'total' | 'heap'): never {
    this.#onRefused(reason);
    throw new ProxyError(
      'overloaded',
      reason === 'heap'
        ? `The proxy is short of memory and sheds new work: retry in ${RETRY_AFTER_SECONDS} s.`
        : `The proxy has as many requests in flight as it accepts: retry in ${RETRY_AFTER_SECONDS} s.`,
      {
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
        data: { limit: reason === 'heap' ? 'heap' : 'inFlightTotal', retryAfterSeconds: RETRY_AFTER_SECONDS },
      },
    );
  }
}

/**
 * Reads V8's heap use against the limit that matters. `heap_size_limit` adds the young
 * generation's reserve to the old generation's limit; that reserve can be 192 MB, so with a
 * small `--max-old-space-size` the process dies of a full old generation long before the
 * reported limit. When the flag is given, it is the limit (young objects still count as used,
 * which only sheds a little early).
 */
export function heapGauge(execArgv: readonly string[], nodeOptions: string | undefined): () => HeapReading {
  let oldSpace = Number.POSITIVE_INFINITY;
  for (const arg of [...execArgv, ...(nodeOptions ?? '').split(/\s+/)]) {
    const match = /^--max[-_]old[-_]space[-_]size=(\d+)$/.exec(arg);
    if (match) oldSpace = Number(match[1]) * 1_048_576;
  }
  return () => {
    const stats = getHeapStatistics();
    return { used: stats.used_heap_size, limit: Math.min(stats.heap_size_limit, oldSpace) };
  };
}
