/**
 * @module observability/latency-window
 * A fixed-size latency histogram over a sliding window, for the status page's percentiles: an
 * observation is one bucket increment in a preallocated array (no allocation), and memory never
 * grows with traffic. Buckets are logarithmic (four per doubling, about 19 % wide) from 0.1 ms to
 * about 100 s, so a percentile is read as its bucket's upper bound, within 19 % of the truth.
 */

/** Buckets per doubling of the latency. */
const PER_DOUBLING = 4;
/** Upper bound of bucket 0, in milliseconds. */
const FIRST_MS = 0.1;
/** Bucket count: the last one takes everything above about 105 s. */
const BUCKETS = 81;
/** How long one half of the window counts before it is reset and reused. */
export const HALF_WINDOW_MS = 60_000;

/** The bucket a latency (milliseconds) falls in. */
function bucketOf(ms: number): number {
  if (!(ms > FIRST_MS)) return 0;
  const index = Math.ceil(Math.log2(ms / FIRST_MS) * PER_DOUBLING);
  return index < BUCKETS ? index : BUCKETS - 1;
}

/** The upper bound of a bucket, in milliseconds (the last one reports its lower bound). */
function boundOf(index: number): number {
  return FIRST_MS * 2 ** (Math.min(index, BUCKETS - 2) / PER_DOUBLING);
}

/**
 * Latencies of the last one to two minutes: two halves, the older dropped when the newer has
 * counted {@link HALF_WINDOW_MS}. Percentiles read both.
 */
export class LatencyWindow {
  #current = new Uint32Array(BUCKETS);
  #previous = new Uint32Array(BUCKETS);
  #startedAt: number;

  constructor(now: number) {
    this.#startedAt = now;
  }

  /** Counts one latency, observed at `now` (ms on the clock the window was made with). */
  observe(ms: number, now: number): void {
    this.#rotate(now);
    const bucket = bucketOf(ms);
    this.#current[bucket] = (this.#current[bucket] as number) + 1;
  }

  /**
   * The latencies at the given quantiles (0..1) over the window, in milliseconds, and how many
   * observations they come from; `null` quantiles when the window is empty.
   */
  percentiles(quantiles: readonly number[], now: number): { count: number; ms: (number | null)[] } {
    this.#rotate(now);
    const counts = new Uint32Array(BUCKETS);
    let count = 0;
    for (let i = 0; i < BUCKETS; i++) {
      counts[i] = (this.#current[i] as number) + (this.#previous[i] as number);
      count += counts[i] as number;
    }
    const ms = quantiles.map((q) => {
      if (count === 0) return null;
      const rank = Math.max(1, Math.ceil(q * count));
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += counts[i] as number;
        if (seen >= rank) return Math.round(boundOf(i) * 100) / 100;
      }
      return Math.round(boundOf(BUCKETS - 1) * 100) / 100;
    });
    return { count, ms };
  }

  #rotate(now: number): void {
    const elapsed = now - this.#startedAt;
    if (elapsed < HALF_WINDOW_MS) return;
    // Swap the arrays rather than allocate: the old "previous" becomes the cleared current.
    const old = this.#previous;
    old.fill(0);
    if (elapsed < 2 * HALF_WINDOW_MS) {
      this.#previous = this.#current;
      this.#startedAt += HALF_WINDOW_MS;
    } else {
      // Idle for more than a whole window: both halves are stale.
      this.#previous.fill(0);
      this.#current.fill(0);
      this.#previous = this.#current;
      this.#startedAt = now;
    }
    this.#current = old;
  }
}
