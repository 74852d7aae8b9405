/**
 * @module signals
 * One call's cancellation: the caller's `AbortSignal`, the client's own lifetime (`close()`)
 * and the call's deadline folded into a single signal whose `reason` says which fired; and the
 * two ways of waiting under such a signal (for a promise, for a delay).
 */
import { TimeoutError } from './errors.ts';

/** The combined signal of one call; `dispose()` once the call settles. */
export interface CallSignal {
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * Links `sources` and a `timeoutMs` deadline (0 = none) into one signal. Its reason is the first
 * aborted source's reason, or a `client_timeout` {@link TimeoutError}.
 */
export function callSignal(sources: ReadonlyArray<AbortSignal | undefined>, timeoutMs: number): CallSignal {
  const controller = new AbortController();
  const cleanups: Array<() => void> = [];
  for (const source of sources) {
    if (!source) continue;
    if (source.aborted) {
      controller.abort(source.reason);
      break;
    }
    const onAbort = () => controller.abort(source.reason);
    source.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => source.removeEventListener('abort', onAbort));
  }
  if (!controller.signal.aborted && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
    const timer = setTimeout(() => {
      controller.abort(
        new TimeoutError('client_timeout', `No answer within ${timeoutMs} ms (timeoutMs).`, {
          data: { timeoutMs },
        }),
      );
    }, timeoutMs);
    cleanups.push(() => clearTimeout(timer));
  }
  return {
    signal: controller.signal,
    dispose: () => {
      for (const cleanup of cleanups) cleanup();
    },
  };
}

/**
 * `promise`, or the signal's reason if it aborts first: a call settles on abort even when what
 * it waits for (a custom `fetch`, a socket that never opens) ignores the signal.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Waits `ms`, or less if `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
