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

/** Reading V8's statistics costs a few microseconds: at most once per this interval. */
const HEAP_SAMPLE_MS = 100;
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

  constructor(options: InFlightOptions, deps: InFlightDeps = {}) {
    this.#options = options;
    this.#heap = deps.heap ?? readHeap;
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
    if (this.#heapIsFull()) this.#refuse('heap');
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

  #heapIsFull(): boolean {
    const percent = this.#options.shedHeapPercent;
    if (percent >= 100) return false;
    const now = this.#now();
    if (now - this.#sampledAt >= HEAP_SAMPLE_MS) {
      this.#sampledAt = now;
      const { used, limit } = this.#heap();
      this.#heapFull = used > (limit * percent) / 100;
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

function readHeap(): HeapReading {
  const stats = getHeapStatistics();
  return { used: stats.used_heap_size, limit: stats.heap_size_limit };
}
