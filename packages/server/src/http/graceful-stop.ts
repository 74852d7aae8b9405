/**
 * @module http/graceful-stop
 * How one app stops without losing a request (issue 19, rolling restarts), in three steps:
 * `drain.unready()` (SIGTERM's first phase) makes `/ready` answer 503 and every answer carry
 * `Connection: close` while requests are still served; `drain.quiet(boundMs)` stops accepting
 * connections, ends the streams that never end by themselves and waits (at most `boundMs`) for
 * the open connections to finish; `close()` refuses new requests (`shutting_down`), ends the
 * rest, and closes keep-alive connections as soon as they fall idle.
 */
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ConnectionDrain } from './connection-drain.ts';

/** While draining, a keep-alive connection idle this long is closed (its client is not using it). */
const DRAIN_IDLE_MS = 250;
/** Once closing, how often idle keep-alive connections are looked for. */
const CLOSE_IDLE_EVERY_MS = 100;

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The first steps of a graceful stop (issue 19): `ready` false makes `/ready` answer 503 and
     * every answer carry `Connection: close` while requests are still served; `quiet` then stops
     * accepting connections, ends the streams that never end by themselves and waits (at most
     * `boundMs`) for the open connections to finish. `close()` ends the rest.
     */
    drain: { unready(): void; quiet(boundMs: number): Promise<void> };
  }
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

  /** Draining or closing: `/ready` answers 503 and answers carry `Connection: close`. */
  get stopping(): boolean {
    return this.#closing || this.#draining;
  }

  /** Decorates `app.drain` and runs the closing step in `preClose`; `dispose` in `onClose`. */
  register(app: FastifyInstance): void {
    app.decorate('drain', {
      unready: () => {
        this.#draining = true;
      },
      quiet: async (boundMs: number) => {
        this.#draining = true;
        this.#connections.stopAccepting();
        this.#endStreams();
        // A connection idle this long has no client about to use it; busy ones end with their next
        // answer (Connection: close), so no request races the closing of its connection.
        await Promise.all([
          this.#connections.quiet(boundMs, DRAIN_IDLE_MS),
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
