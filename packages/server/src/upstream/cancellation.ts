/**
 * @module upstream/cancellation
 * How a request in flight ends early (MCP, cancellation): the `notifications/cancelled` that
 * tells the upstream a request is abandoned, and the abort handles of the requests whose
 * exchange runs on a stream of its own, which a client's notice ends (over 2026-07-28
 * Streamable HTTP, closing a request's stream is its cancellation).
 */
import { ProxyError } from '../errors.ts';
import { cancelledNotice, type RequestId, requestKey } from '../jsonrpc.ts';
import type { UpstreamTransport } from './transport.ts';

/**
 * Tells the upstream that request `requestId` (the id it knows) is abandoned, and why. Never
 * rejects: a cancellation that cannot be sent changes nothing for the caller.
 */
export function cancelUpstream(
  upstream: Pick<UpstreamTransport, 'send'>,
  requestId: RequestId,
  reason: string,
): Promise<void> {
  return upstream.send(cancelledNotice(requestId, reason)).catch(() => {});
}

/** The error a request's exchange ends with when its caller cancelled it (`cause`: the abort seen). */
export function requestCancelled(cause?: unknown): ProxyError {
  return new ProxyError('upstream_unreachable', 'The request was cancelled.', { cause });
}

/**
 * Abort handles of the client requests still running (their upstream exchange, or the wait for
 * a session to open), by request id: a client's `notifications/cancelled` aborts the one it names.
 */
export class RunningRequests {
  readonly #running = new Map<string, AbortController>();

  /** A handle for the exchange of request `id` (it takes the place of one an earlier `id` left). */
  start(id: RequestId): AbortController {
    const controller = new AbortController();
    this.#running.set(requestKey(id), controller);
    return controller;
  }

  /** The exchange of `id` ended: its handle goes, unless a later request of that id took its place. */
  finish(id: RequestId, controller: AbortController): void {
    const key = requestKey(id);
    if (this.#running.get(key) === controller) this.#running.delete(key);
  }

  /** Request `id` was cancelled: its exchange, if it still runs, is aborted. */
  cancel(id: RequestId): void {
    const key = requestKey(id);
    this.#running.get(key)?.abort(requestCancelled());
    this.#running.delete(key);
  }

  /** Aborts every exchange still running (the session closes). */
  abortAll(): void {
    for (const controller of this.#running.values()) controller.abort();
    this.#running.clear();
  }
}
