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
  /** By key: each call's controller, and when it started. */
  readonly #running = new Map<string, Map<AbortController, number>>();
  readonly #now: () => number;

  /** @param now the clock calls' starts are told by ({@link cancel}'s `startedBy`). */
  constructor(now: () => number) {
    this.#now = now;
  }

  /** A call under `key` starts: its controller (what cancels it), and what says it is over. */
  start(key: string): { readonly controller: AbortController; done(): void } {
    const controller = new AbortController();
    const running = this.#running.get(key) ?? new Map<AbortController, number>();
    running.set(controller, this.#now());
    this.#running.set(key, running);
    return {
      controller,
      done: () => {
        running.delete(controller);
        if (running.size === 0 && this.#running.get(key) === running) this.#running.delete(key);
      },
    };
  }

  /**
   * Cancels the one call running under `key` (when it started by `startedBy`: a cancellation
   * known to be older than a call is not meant for it); false when none runs here.
   */
  cancel(key: string, startedBy = Number.POSITIVE_INFINITY): boolean {
    const running = this.#running.get(key);
    if (running === undefined) return false;
    if (running.size === 1) for (const [one, startedAt] of running) if (startedAt <= startedBy) one.abort();
    return true;
  }
}
