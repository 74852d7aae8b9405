/**
 * @module observability/throttled-warning
 * A warning for a dependency that fails on every use (a shared store that is down): logged at
 * most once a minute, so a dead dependency does not flood the log.
 */
import type { Logger } from 'pino';

/** How often the same warning may be logged. */
const EVERY_MS = 60_000;

/** A warning logged at most once a minute (a dead dependency must not flood the log). */
export function throttledWarning(logger: Logger, message: string): (error: Error) => void {
  let last = 0;
  return (error) => {
    if (Date.now() - last < EVERY_MS) return;
    last = Date.now();
    logger.warn({ reason: error.message }, message);
  };
}
