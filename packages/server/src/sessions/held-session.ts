/**
 * @module sessions/held-session
 * An upstream connection the proxy keeps open on a caller's behalf (a legacy SSE stream), with
 * the correlator that matches its responses to requests.
 */
import { RequestCorrelator } from '../upstream/exchange.ts';
import type { UpstreamTransport } from '../upstream/transport.ts';

/** One upstream connection held between requests. */
export class HeldSession {
  readonly url: URL;
  readonly transport: UpstreamTransport;
  readonly correlator: RequestCorrelator;
  #closed = false;
  #onClosed: (() => void) | undefined;

  constructor(url: URL, transport: UpstreamTransport) {
    this.url = url;
    this.transport = transport;
    this.correlator = new RequestCorrelator(transport, false);
    const previous = transport.onclose;
    transport.onclose = () => {
      previous?.();
      this.#closed = true;
      this.#onClosed?.();
    };
  }

  /** True once the upstream connection has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Called once when the upstream side ends on its own (the store then forgets the session). */
  set onClosed(callback: () => void) {
    this.#onClosed = callback;
  }

  /** Closes the upstream connection. */
  async close(): Promise<void> {
    await this.transport.close();
  }
}
