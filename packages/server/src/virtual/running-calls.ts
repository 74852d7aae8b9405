/**
 * @module virtual/running-calls
 * The requests a virtual server is answering on this instance, by principal, client session
 * (if any), virtual server and request id, so that a client's `notifications/cancelled` (a POST
 * of its own, here or, for a session's call, on another instance: review10 RESUME-8) reaches
 * them. A client with a session names its own requests; without one (`POST /proxy`), two tabs of
 * one principal may use the same id at once: both are kept, and a cancellation of that id then
 * reaches neither (review 6, VIRTUAL-6; MCP lets a receiver ignore one). Each is an HTTP request
 * still open, or one that outlives its connection and holds its in-flight slot: the in-flight
 * caps bound them.
 */
import { type RequestId, requestKey } from '../jsonrpc.ts';

/** Who sent a request: the principal, and its client session when it has one. */
export interface CallOwner {
  readonly caller: { readonly principalKey: string };
  readonly session?: string | undefined;
}

/** The key of a call of `owner` to the virtual server `name`. */
export function callKey(owner: CallOwner, name: string, id: RequestId): string {
  const client = owner.session === undefined ? 'p' : `s:${owner.session}`;
  return `${owner.caller.principalKey}\n${client}\n${name}\n${requestKey(id)}`;
}

/** The calls running here. */
export class RunningCalls {
  readonly #running = new Map<string, Set<AbortController>>();

  /** A call under `key` starts: its controller (what cancels it), and what says it is over. */
  start(key: string): { readonly controller: AbortController; done(): void } {
    const controller = new AbortController();
    const running = this.#running.get(key) ?? new Set<AbortController>();
    running.add(controller);
    this.#running.set(key, running);
    return {
      controller,
      done: () => {
        running.delete(controller);
        if (running.size === 0 && this.#running.get(key) === running) this.#running.delete(key);
      },
    };
  }

  /** Cancels the one call running under `key`; false when none runs here. */
  cancel(key: string): boolean {
    const running = this.#running.get(key);
    if (running === undefined) return false;
    if (running.size === 1) for (const one of running) one.abort();
    return true;
  }
}
