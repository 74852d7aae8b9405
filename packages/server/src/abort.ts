/**
 * @module abort
 * Linked abort signals with explicit clean-up. `AbortSignal.any()` and `AbortSignal.timeout()`
 * keep bookkeeping (weak references, finalization entries) alive on long-lived source signals
 * until garbage collection gets to them; on a hot path that grows the heap with every request.
 * A {@link LinkedAbort} removes its listeners and timer when the exchange ends.
 */

/** A signal aborted by any of its sources or by a deadline, until disposed. */
export interface LinkedAbort {
  readonly signal: AbortSignal;
  /** True when the deadline (not a source) aborted it. */
  readonly timedOut: boolean;
  /** Detaches from the sources and clears the deadline. Idempotent. */
  dispose(): void;
}

/**
 * Links `sources` (and an optional deadline) into one signal. `onAbort` is called once it
 * aborts later on (not when a source was aborted already): the owner's own reaction, without
 * a listener added to and removed from the signal on every exchange.
 */
export function linkAbort(
  sources: ReadonlyArray<AbortSignal | undefined>,
  timeoutMs?: number,
  onAbort?: () => void,
): LinkedAbort {
  const controller = new AbortController();
  const attached: Array<[AbortSignal, () => void]> = [];
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const dispose = () => {
    clearTimeout(timer);
    for (const [source, listener] of attached.splice(0)) source.removeEventListener('abort', listener);
  };
  for (const source of sources) {
    if (!source) continue;
    if (source.aborted) {
      controller.abort(source.reason);
      break;
    }
    const listener = () => {
      controller.abort(source.reason);
      dispose();
      onAbort?.();
    };
    source.addEventListener('abort', listener, { once: true });
    attached.push([source, listener]);
  }
  if (timeoutMs !== undefined && !controller.signal.aborted) {
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException('The operation timed out.', 'TimeoutError'));
      dispose();
      onAbort?.();
    }, timeoutMs);
    timer.unref();
  }
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    dispose,
  };
}
