/**
 * @module surfaces/ws/outbox
 * What one `/ws` socket sends upstream, in arrival order, bounded: while the outbox is empty
 * and the sends in flight allow it a message starts at once; otherwise it waits as JSON text
 * (a parsed message can cost twenty times its text) behind what is already waiting, so a
 * request never overtakes a notification sent before it (e.g. `notifications/initialized`).
 * The connection reads `bytes` and `length` to pause, resume or close the caller's socket.
 */
import {
  isRequest,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../../jsonrpc.ts';

/**
 * Notifications and answers to server requests one socket may have on their way upstream at
 * once. Each transport's `send` settles only once the upstream took the bytes (a WebSocket
 * flushed them, a child drained its stdin, an HTTP exchange ended), so this bounds what a
 * transport buffers for the socket, and the POSTs it opens.
 */
const UPSTREAM_SENDS_IN_FLIGHT = 4;

/** A message waiting to go upstream, and what the connection keeps with it (`T`). */
interface Queued<T> {
  readonly text: string;
  readonly request: boolean;
  readonly tag: T | undefined;
}

/** How the outbox starts a message on a session `S`; `T` is what came with it (its span). */
export interface OutboxHooks<S, T> {
  /** Starts a request (its answer arrives on the socket); failures are the hook's to report. */
  readonly request: (session: S, message: JsonRpcRequest, tag: T | undefined) => void;
  /** Sends a notification or an answer; settles (never rejects) once the upstream took it. */
  readonly send: (
    session: S,
    message: JsonRpcNotification | JsonRpcResponse,
    tag: T | undefined,
  ) => Promise<void>;
  /** Called after waiting messages were started: reading the caller may resume. */
  readonly drained: () => void;
}

/** The messages of one socket on their way upstream. */
export class UpstreamOutbox<S, T = undefined> {
  readonly #hooks: OutboxHooks<S, T>;
  /** Oldest first; empty while the upstream keeps up. */
  readonly #queue: Queued<T>[] = [];
  #bytes = 0;
  /** Notifications and answers whose `send` has not settled. */
  #sendsInFlight = 0;
  #closed = false;

  constructor(hooks: OutboxHooks<S, T>) {
    this.#hooks = hooks;
  }

  /** Characters of JSON text waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Messages waiting. */
  get length(): number {
    return this.#queue.length;
  }

  /** Sends a message upstream in arrival order (at once, or after what already waits). */
  push(session: S, message: JsonRpcMessage, tag?: T): void {
    const request = isRequest(message);
    if (this.#queue.length === 0 && (request || this.#sendsInFlight < UPSTREAM_SENDS_IN_FLIGHT)) {
      this.#start(session, message, tag);
      return;
    }
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch {
      return; // Not representable: parsed from a frame within the depth bound, so never here.
    }
    this.#queue.push({ text, request, tag });
    this.#bytes += text.length;
  }

  /** Drops what waits; nothing starts any more (the socket closed). Returns their tags. */
  close(): T[] {
    this.#closed = true;
    const dropped = this.#queue.splice(0).flatMap(({ tag }) => (tag === undefined ? [] : [tag]));
    this.#bytes = 0;
    return dropped;
  }

  #start(session: S, message: JsonRpcMessage, tag: T | undefined): void {
    if (isRequest(message)) {
      this.#hooks.request(session, message, tag);
      return;
    }
    this.#sendsInFlight++;
    this.#hooks.send(session, message as JsonRpcNotification | JsonRpcResponse, tag).finally(() => {
      this.#sendsInFlight--;
      this.#pump(session);
    });
  }

  /** Starts what waits, as far as the sends in flight allow. */
  #pump(session: S): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const next = this.#queue[0] as Queued<T>;
      if (!next.request && this.#sendsInFlight >= UPSTREAM_SENDS_IN_FLIGHT) break;
      this.#queue.shift();
      this.#bytes -= next.text.length;
      this.#start(session, JSON.parse(next.text) as JsonRpcMessage, next.tag);
    }
    this.#hooks.drained();
  }
}
