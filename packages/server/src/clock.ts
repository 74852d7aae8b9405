/**
 * @module clock
 * The time every time-bound mechanism reads (rate windows, idle sessions, cache lifetimes),
 * passed in rather than read from `Date.now()` so a test can move time instead of waiting it
 * out. Production uses {@link SYSTEM_CLOCK}.
 */

/** Milliseconds now, and a repeating task, on one time line. */
export interface Clock {
  /** Current time in milliseconds (epoch-based for the system clock). */
  now(): number;
  /**
   * Runs `task` every `intervalMs` until the returned function is called. The task never keeps
   * the process alive by itself.
   */
  every(intervalMs: number, task: () => void): () => void;
}

/** Wall-clock time and real timers. */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: () => Date.now(),
  every(intervalMs: number, task: () => void): () => void {
    const timer = setInterval(task, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
});
