/**
 * @module surfaces/mcp/resumable-answer
 * Resumable answer streams of a virtual server's 2025-era sessions (issue 20; MCP 2025-11-25
 * "Resumability and Redelivery", SSE polling): a `tools/call` of a session that negotiated
 * 2025-11-25 is answered with an event stream that opens with a priming event (an id, the
 * `retry` wait, no data) and gives every message an id. Each event is kept in the session's log
 * (virtual/answer-events.ts) before it is written, so a client that lost the stream, or whose
 * stream the proxy closed after `ANSWER_POLL_MS` without the answer, GETs it back with
 * `Last-Event-ID`, here or on another instance sharing the store. Losing the connection is not
 * cancelling the call (the spec: disconnection MUST NOT be taken for cancellation).
 */
import type { FastifyReply } from 'fastify';
import { ProxyError } from '../../errors.ts';
import {
  type EventStreamOptions,
  EventStreamWriter,
  sendEventStream,
} from '../../http/event-stream-writer.ts';
import type { JsonRpcMessage, JsonRpcResponse } from '../../jsonrpc.ts';
import type { AnswerEvents, LoggedSession, Replay } from '../../virtual/answer-events.ts';
import type { VirtualChannel } from '../../virtual/member-requests.ts';

/** The wait a client is told to take before resuming a stream (the priming event's `retry`). */
export const RESUME_RETRY_MS = 500;

/** What resumable answers need. */
export interface ResumableAnswers {
  readonly events: AnswerEvents;
  /** How long a stream waits open for its answer before it is closed for the client to poll; 0: never. */
  readonly pollMs: () => number;
}

/**
 * Closes `writer` after `pollMs` (0: never) unless it closed before, or `resumable` says the
 * stream can no longer be resumed then; the timer goes with it.
 */
function pollAfter(writer: EventStreamWriter, pollMs: number, resumable: () => boolean = () => true): void {
  if (pollMs <= 0) return;
  const timer = setTimeout(() => {
    if (resumable()) writer.close();
  }, pollMs);
  timer.unref();
  writer.onClose(() => clearTimeout(timer));
}

/**
 * A request's answer stream, resumable: started at once (the priming event), every message
 * logged then written, the answers and the stream's end logged last. When the store fails the
 * stream goes on unlogged, as a plain stream (nothing to resume from is promised after that).
 */
export class ResumableAnswer implements VirtualChannel {
  readonly asks = true;
  readonly #answers: ResumableAnswers;
  readonly #session: LoggedSession;
  readonly #stream: string;
  readonly #writer: EventStreamWriter;
  readonly #reply: FastifyReply;
  #seq = 0;
  #logged = true;
  /** The writes in order: each waits for the one before (and its store write). */
  #chain: Promise<void> = Promise.resolve();

  constructor(
    reply: FastifyReply,
    options: EventStreamOptions,
    answers: ResumableAnswers,
    session: LoggedSession,
  ) {
    this.#reply = reply;
    this.#answers = answers;
    this.#session = session;
    this.#stream = answers.events.newStream();
    this.#writer = new EventStreamWriter(options);
    reply.raw.once('close', () => this.#writer.close());
    sendEventStream(reply, this.#writer);
    this.#then([undefined], (id) => {
      if (id === undefined) return;
      this.#writer.prime(id, RESUME_RETRY_MS);
      pollAfter(this.#writer, answers.pollMs(), () => this.#logged);
    });
  }

  /** Always: the stream starts with its priming event. */
  get started(): boolean {
    return true;
  }

  send(message: JsonRpcMessage): boolean {
    if (!this.#logged && this.#writer.closed) return false;
    this.#then([message], (id) => this.#writer.write(message, id));
    return true;
  }

  /** Logs and writes the answers, then ends the stream (logged too: a resumption ends there). */
  end(answers: readonly JsonRpcResponse[]): FastifyReply {
    this.#then([...answers, null], (id, index) => {
      const answer = answers[index];
      if (answer !== undefined) this.#writer.write(answer, id);
      else this.#writer.close();
    });
    return this.#reply;
  }

  /** Logs `messages` at the next positions, then calls `write` for each with its id (none: unlogged). */
  #then(
    messages: ReadonlyArray<JsonRpcMessage | undefined | null>,
    write: (id: string | undefined, index: number) => void,
  ): void {
    const seq = this.#seq;
    this.#seq += messages.length;
    this.#chain = this.#chain.then(async () => {
      if (this.#logged) {
        try {
          await this.#answers.events.append(this.#session, this.#stream, seq, messages);
        } catch {
          this.#logged = false;
        }
      }
      messages.forEach((_, index) => {
        write(
          this.#logged ? this.#answers.events.idOf(this.#session, this.#stream, seq + index) : undefined,
          index,
        );
      });
    });
  }
}

/**
 * GET with `Last-Event-ID`: the stream the id belongs to, from after it: what was kept, then
 * what comes, until its end (or the proxy closes it again after `ANSWER_POLL_MS`). An id that is
 * not this session's is refused `stream_event_foreign`; one whose stream cannot be resumed
 * `stream_event_unknown`.
 */
export async function resumeAnswer(
  reply: FastifyReply,
  options: EventStreamOptions,
  answers: ResumableAnswers,
  session: LoggedSession,
  lastEventId: string,
  shutdown: AbortSignal,
): Promise<FastifyReply> {
  const { events } = answers;
  const cursor = events.cursorOf(session, lastEventId);
  if (cursor === undefined) throw new ProxyError('stream_event_foreign');
  const writer = new EventStreamWriter(options);
  let seq = cursor.seq;
  /** Closes the stream once its writer is taken for dead (silent past the upstream deadline). */
  let dead: NodeJS.Timeout | undefined;
  writer.onClose(() => clearTimeout(dead));
  /** Until the first read is written, what is heard waits for it (then the log is read again). */
  let heardEarly: boolean | undefined = false;
  let first: Replay | undefined;
  /** Re-reads what the log kept after the cursor (an append may not have been heard). */
  const reread = () => {
    if (heardEarly !== undefined) heardEarly = true;
    else if (!writer.closed) events.after(session, cursor).then(deliver, () => writer.close());
  };
  /** Writes what is new in `replay` (a read may overtake another: positions say what is new). */
  const deliver = (replay: Replay | undefined): void => {
    // Dropped from the log while the client was reading, or the stream died: nothing more comes.
    if (replay === undefined) {
      writer.close();
      return;
    }
    if (writer.closed) return;
    // Heard before the first read was written, or after an append not heard: the log has it all.
    if ((heardEarly !== undefined && replay !== first) || replay.from > seq + 1) {
      reread();
      return;
    }
    for (const event of replay.events) {
      if (event.seq <= seq) continue;
      seq = event.seq;
      writer.write(event.message, event.id);
    }
    clearTimeout(dead);
    if (replay.ended) {
      writer.close();
      return;
    }
    dead = setTimeout(() => writer.close(), events.msUntil(replay.deadline));
    dead.unref();
  };
  // Listening first: an event logged between the first read and the subscription is not missed.
  const stop = await events.watch(session, cursor, deliver, reread);
  writer.onClose(() => void stop().catch(() => {}));
  first = await events.after(session, cursor).catch((error: unknown) => {
    writer.close();
    throw error;
  });
  if (first === undefined) {
    writer.close();
    throw new ProxyError('stream_event_unknown');
  }
  // Primed again with the id it resumes from: a client that keeps its cursor per connection (the
  // SDK does) then still has one if this stream too is closed before anything new is written.
  writer.prime(lastEventId, RESUME_RETRY_MS);
  deliver(first);
  const early = heardEarly;
  heardEarly = undefined;
  if (early) reread();
  const end = () => writer.close();
  shutdown.addEventListener('abort', end, { once: true });
  writer.onClose(() => shutdown.removeEventListener('abort', end));
  reply.raw.once('close', end);
  // The session's end ends what it kept: a stream never outlives it.
  const expiry = setTimeout(end, events.expiresInMs(session));
  expiry.unref();
  writer.onClose(() => clearTimeout(expiry));
  pollAfter(writer, answers.pollMs());
  return sendEventStream(reply, writer);
}
