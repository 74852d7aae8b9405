/**
 * @module http/event-stream-writer
 * Writes JSON-RPC messages as Server-Sent Events to one inbound stream, with a bound on what
 * may queue for a slow reader (the stream is closed rather than buffered without limit) and a
 * comment heartbeat so idle intermediaries keep long-lived streams open.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { JsonRpcMessage } from '../jsonrpc.ts';

/** Limits of one event stream. */
export interface EventStreamOptions {
  /** Bytes that may wait for a slow reader before the stream is closed. */
  readonly maxQueuedBytes: number;
  /** Interval of `: ping` comments; 0 disables them. */
  readonly heartbeatMs: number;
}

/** Nothing to do when the response asks for more: events are pushed as they come. */
function noRead(): void {}

/** One outbound SSE stream. */
export class EventStreamWriter {
  /**
   * The body to hand to the HTTP response. A plain Readable fed with push(), not a PassThrough:
   * each event then goes straight to the reading side instead of through a writable side and a
   * transform first (a bridged answer is a few events, and each one counted).
   */
  readonly stream = new Readable({ read: noRead });
  readonly #options: EventStreamOptions;
  readonly #heartbeat: NodeJS.Timeout | undefined;
  readonly #onClose: Array<() => void> = [];
  #closed = false;

  constructor(options: EventStreamOptions) {
    this.#options = options;
    if (options.heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => this.#raw(': ping\n\n'), options.heartbeatMs);
      this.#heartbeat.unref();
    }
    this.stream.once('close', () => this.close());
  }

  /** True once the stream ended or the reader went away. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Writes one message (as the event `id`, on a resumable stream); false when the stream is
   * closed or was closed for falling behind.
   */
  write(message: JsonRpcMessage, id?: string): boolean {
    const data = `event: message\ndata: ${JSON.stringify(message)}\n\n`;
    return this.#raw(id === undefined ? data : `id: ${id}\n${data}`);
  }

  /**
   * Writes the priming event of a resumable stream (MCP 2025-11-25): an id to resume from, the
   * wait before resuming (`retry`), no data.
   */
  prime(id: string, retryMs: number): boolean {
    return this.#raw(`id: ${id}\nretry: ${retryMs}\ndata: \n\n`);
  }

  /** Writes an SSE comment (ignored by readers; flushes the response headers at once). */
  comment(text: string): void {
    this.#raw(`: ${text}\n\n`);
  }

  /** Ends the stream after what was written. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    if (!this.stream.destroyed) this.stream.push(null);
    for (const callback of this.#onClose.splice(0)) callback();
  }

  /** Registers a callback for when the stream closes, whoever closed it. */
  onClose(callback: () => void): void {
    if (this.#closed) callback();
    else this.#onClose.push(callback);
  }

  #raw(text: string): boolean {
    if (this.#closed) return false;
    if (this.stream.readableLength > this.#options.maxQueuedBytes) {
      // The reader is not keeping up: drop the stream rather than buffer without bound.
      this.stream.destroy();
      this.close();
      return false;
    }
    this.stream.push(text);
    return true;
  }
}

/** Answers an HTTP request with the event stream `writer` feeds. */
export function sendEventStream(reply: FastifyReply, writer: EventStreamWriter): FastifyReply {
  return reply
    .code(200)
    .header('content-type', 'text/event-stream')
    .header('cache-control', 'no-cache, no-transform')
    .header('x-accel-buffering', 'no')
    .send(writer.stream);
}

/** A deadline re-armed by each sign of life: an answer stream may run long, not silently forever. */
export interface IdleWatch {
  /** (Re)starts the deadline. */
  arm(): void;
  /** Stops it for good (the stream closed). */
  stop(): void;
}

/** Calls `onIdle` once `timeoutMs` pass without {@link IdleWatch.arm}. */
export function idleWatch(timeoutMs: number, onIdle: () => void): IdleWatch {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  return {
    arm: () => {
      if (stopped) return;
      // One timer per stream, restarted in place: no new timer for each event.
      if (timer === undefined) {
        timer = setTimeout(onIdle, timeoutMs);
        timer.unref();
      } else timer.refresh();
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
