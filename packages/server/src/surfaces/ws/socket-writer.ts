/**
 * @module surfaces/ws/socket-writer
 * What a `/ws` socket sends its caller, paced by the caller's reading: above half the queue
 * bound, reading the upstream pauses until the caller has drained most of it; a caller that
 * stops reading even then (above the whole bound) is given up on. `ws` has no drain event, so
 * the queue is polled while paused (only then).
 */
import WebSocket from 'ws';

/** How often a paused connection checks whether its reader caught up. */
const DRAIN_POLL_MS = 20;

/** What the writer pauses while the caller is behind. */
export interface Pausable {
  pause(): void;
  resume(): void;
}

/** The writer's bound and collaborators. */
export interface SocketWriterOptions {
  /** Bytes queued for the reader: above half, upstream reading pauses; above all, `tooSlow`. */
  readonly maxQueuedBytes: number;
  /** The upstream to pause (undefined before it is open). */
  readonly upstream: () => Pausable | undefined;
  /** The reader fell behind beyond the bound: the connection closes. */
  readonly tooSlow: () => void;
}

/** Writes JSON-RPC messages to one socket. */
export class SocketWriter {
  readonly #socket: WebSocket;
  readonly #options: SocketWriterOptions;
  #drainWatch: NodeJS.Timeout | undefined;
  #frames = 0;

  constructor(socket: WebSocket, options: SocketWriterOptions) {
    this.#socket = socket;
    this.#options = options;
  }

  /** Frames written so far. */
  get frames(): number {
    return this.#frames;
  }

  /** Writes `message`; false when the socket is not open or the reader is too far behind. */
  write(message: unknown): boolean {
    const socket = this.#socket;
    if (socket.readyState !== WebSocket.OPEN) return false;
    const { maxQueuedBytes } = this.#options;
    if (socket.bufferedAmount > maxQueuedBytes) {
      // The reader stopped reading even with upstream paused: give up rather than buffer on.
      this.#options.tooSlow();
      return false;
    }
    this.#frames++;
    socket.send(JSON.stringify(message));
    if (socket.bufferedAmount > maxQueuedBytes / 2 && !this.#drainWatch) this.#pauseUpstream();
    return true;
  }

  /** Stops watching (the socket closed). */
  close(): void {
    clearInterval(this.#drainWatch);
  }

  /** Stops reading upstream until the reader has drained most of what is queued. */
  #pauseUpstream(): void {
    const upstream = this.#options.upstream();
    if (!upstream) return;
    upstream.pause();
    this.#drainWatch = setInterval(() => {
      if (
        this.#socket.readyState !== WebSocket.OPEN ||
        this.#socket.bufferedAmount < this.#options.maxQueuedBytes / 4
      ) {
        clearInterval(this.#drainWatch);
        this.#drainWatch = undefined;
        upstream.resume();
      }
    }, DRAIN_POLL_MS);
    this.#drainWatch.unref();
  }
}
