/**
 * @module surfaces/ws/requests-in-flight
 * The requests of one `/ws` socket waiting for their answer. Each holds an in-flight slot (the
 * socket's own cap, and the per-token and total caps shared with the HTTP surfaces) and, while
 * tracing is on, its server span, until the answer goes to the socket, the caller cancels it, or
 * the socket closes. Ids are the caller's: one in flight cannot be used again until answered.
 */
import { ProxyError } from '../../errors.ts';
import type { RequestId } from '../../jsonrpc.ts';
import type { InFlightLimits, Release } from '../../limits/in-flight.ts';
import type { ProxySpan } from '../../observability/tracing.ts';
import { PendingRequests } from '../../upstream/correlator.ts';

/** What a waiting request holds. */
interface Waiting {
  readonly release: Release;
  readonly span: ProxySpan | undefined;
}

/** The caps a socket's requests count against. */
export interface RequestCaps {
  /** Requests one socket may have in flight at once. */
  readonly maxInFlight: number;
  /** Per-token and total in-flight caps shared with the HTTP surfaces. */
  readonly inFlight: InFlightLimits;
  /** Whose slots they are (the proxy-token identity). */
  readonly ownerId: string;
}

/** The requests of one socket in flight. */
export class RequestsInFlight {
  readonly #caps: RequestCaps;
  readonly #waiting = new PendingRequests<Waiting>();

  constructor(caps: RequestCaps) {
    this.#caps = caps;
  }

  /** True while a request with this id waits for its answer. */
  has(id: RequestId): boolean {
    return this.#waiting.has(id);
  }

  /** Takes a slot for request `id` (keeping its span), or says why not (its refusal). */
  admit(id: RequestId, span: ProxySpan | undefined): ProxyError | undefined {
    const { maxInFlight, inFlight, ownerId } = this.#caps;
    if (this.#waiting.size >= maxInFlight) {
      return new ProxyError(
        'too_many_in_flight',
        'Too many requests in flight on this WebSocket: wait for answers before sending more.',
        { data: { limit: maxInFlight } },
      );
    }
    try {
      this.#waiting.add(id, { release: inFlight.acquire(ownerId), span });
      return undefined;
    } catch (error) {
      return error as ProxyError;
    }
  }

  /** The answer to `id` went out (failed with `errorCode`, a registry code): slot and span end. */
  answered(id: RequestId, errorCode?: string): void {
    const waiting = this.#waiting.take(id);
    waiting?.release();
    waiting?.span?.end(errorCode);
  }

  /** The caller cancelled `id`: it gets no answer (the MCP spec), its slot is free now. */
  cancelled(id: RequestId): void {
    unanswered(this.#waiting.take(id), 'cancelled');
  }

  /** The socket closed: every request still waiting ends unanswered. */
  close(): void {
    for (const [, waiting] of this.#waiting.drain()) unanswered(waiting, 'closed');
  }
}

function unanswered(waiting: Waiting | undefined, outcome: 'cancelled' | 'closed'): void {
  waiting?.release();
  waiting?.span?.set({ 'mcp_proxy.outcome': outcome });
  waiting?.span?.end();
}
