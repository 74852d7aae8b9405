/**
 * The one polling helper of the tests: for conditions no event announces (a log line, a child's
 * exit, a counter on a fixture), check again every few milliseconds until it holds or a deadline
 * passes. Never a wait for time to pass: tests that need time to move use a ManualClock.
 */

/** How long and how often to check. */
export interface EventuallyOptions {
  /** Fail after this long (default 5 s). */
  readonly timeoutMs?: number;
  /** Pause between checks (default 20 ms). */
  readonly intervalMs?: number;
  /** What was awaited, for the failure message; a function can describe the state at the time. */
  readonly what?: string | (() => string);
}

/**
 * Resolves with the first result of `check` that is neither `undefined`, `null` nor `false`;
 * rejects naming `what` once `timeoutMs` has passed. `check` may be async; what it throws fails
 * at once.
 */
export async function eventually<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: EventuallyOptions = {},
): Promise<T> {
  const { timeoutMs = 5_000, intervalMs = 20, what = 'a condition' } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) {
      const described = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${described}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
