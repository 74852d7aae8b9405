/**
 * @module http/graceful-stop
 * How one app stops without losing a request (issue 19, rolling restarts), in three steps:
 * `drain.unready()` (SIGTERM's first phase) makes `/ready` answer 503 while requests are still
 * served as before; `drain.quiet(…)` stops accepting connections, from then on (once no new
 * connection can arrive) answers every request with `Connection: close`, ends the streams that
 * never end by themselves and waits (at most `boundMs`) for the open connections to end, closing
 * those idle `idleMs` (connection-drain.ts says why no sooner); `close()` refuses new requests
 * (`shutting_down`), ends the rest, and closes keep-alive connections as soon as they fall idle.
 *
 * `Connection: close` waits for the listener to close: before, each such answer would make a
 * load balancer open a new connection here, and a connection the kernel has accepted but the
 * process not yet taken is reset when the listener closes, its request lost. After, a new
 * connection is refused, which a load balancer retries on another instance (even a POST).
 * Under `WORKERS` the primary holds the listener: `listenerClosed` waits for its word.
 */
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ConnectionDrain } from './connection-drain.ts';

/** Once closing, how often idle keep-alive connections are looked for. */
const CLOSE_IDLE_EVERY_MS = 100;

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The first steps of a graceful stop (issue 19): `unready` makes `/ready` answer 503 while
     * requests are still served; `quiet` then stops accepting connections, answers with
     * `Connection: close`, ends the streams that never end by themselves and waits (at most
     * `boundMs`) for the open connections to end, closing those idle for `idleMs`. `close()`
     * ends the rest.
     */
    drain: { unready(): void; quiet(options: QuietOptions): Promise<void> };
  }
}

/** How `drain.quiet` ends the open connections. */
export interface QuietOptions {
  /** The longest it waits for them. */
  readonly boundMs: number;
  /** Closes a connection idle this long (longer than a load balancer keeps an idle one). */
  readonly idleMs: number;
  /** Resolves once no new connection can arrive (`WORKERS`: the primary's listener is closed). */
  readonly listenerClosed?: (() => Promise<void>) | undefined;
}

/** What the stop ends besides connections. */
export interface GracefulStopDeps {
  /** Ends the held sessions' streams that never end by themselves (GET event streams). */
  readonly endSessionStreams: () => void;
  /** Runs first when the app closes (other instances stop relaying here). */
  readonly beforeClose: () => Promise<void>;
  /**
   * Waits (at most `boundMs`) for the requests other instances relayed here: they have no
   * connection here, and `beforeClose` would abandon them after they ran upstream (issue 19).
   */
  readonly quietRelayed?: (boundMs: number) => Promise<void>;
}

/** The stop phases of one app, and its connections. */
export class GracefulStop {
  readonly #deps: GracefulStopDeps;
  /** Connections and how many requests each has in flight: one with none can be closed at stop. */
  readonly #connections: ConnectionDrain;
  readonly #shutdown = new AbortController();
  #draining = false;
  #quieting = false;
  #closing = false;
  #closeIdle: NodeJS.Timeout | undefined;

  constructor(server: Server, deps: GracefulStopDeps) {
    this.#deps = deps;
    this.#connections = new ConnectionDrain(server);
  }

  /** Aborted when the streams that never end by themselves must end (relayed GET streams). */
  get signal(): AbortSignal {
    return this.#shutdown.signal;
  }

  /** The app is closing: new requests (but `/health`, `/ready`) are refused. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Draining or closing: `/ready` answers 503. */
  get stopping(): boolean {
    return this.#closing || this.#draining;
  }

  /** No longer accepting connections: every answer carries `Connection: close`. */
  get closesConnections(): boolean {
    return this.#closing || this.#quieting;
  }

  /** Decorates `app.drain` and runs the closing step in `preClose`; `dispose` in `onClose`. */
  register(app: FastifyInstance): void {
    app.decorate('drain', {
      unready: () => {
        this.#draining = true;
      },
      quiet: async ({ boundMs, idleMs, listenerClosed }: QuietOptions) => {
        this.#draining = true;
        const until = performance.now() + boundMs;
        this.#connections.stopAccepting();
        if (listenerClosed !== undefined) await withinMs(listenerClosed(), boundMs);
        this.#quieting = true;
        this.#endStreams();
        // Busy connections end with their next answer; idle ones are left to their clients (a
        // load balancer closes them at its idle timeout) for idleMs, so no request races their
        // closing.
        await Promise.all([
          this.#connections.quiet(Math.max(0, until - performance.now()), idleMs),
          this.#deps.quietRelayed?.(boundMs),
        ]);
      },
    });
    app.addHook('preClose', async () => {
      this.#closing = true;
      await this.#deps.beforeClose();
      this.#endStreams();
      // Keep-alive connections that fall idle once their request finished (or never sent one)
      // would hold close() open until their timeout: close them as soon as they are idle.
      this.#closeIdle = setInterval(() => this.#connections.closeIdle(), CLOSE_IDLE_EVERY_MS);
      this.#closeIdle.unref();
    });
  }

  /** Stops looking for idle connections (the app has closed). */
  dispose(): void {
    clearInterval(this.#closeIdle);
  }

  /** Streams that never end by themselves (GET event streams) end; calls in flight finish. */
  #endStreams(): void {
    this.#shutdown.abort();
    this.#deps.endSessionStreams();
  }
}

/** Resolves when `promise` does, or after `ms`. */
async function withinMs(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
