/**
 * @module transport/sse
 * A small event-stream parser (WHATWG HTML, "Server-sent events: parsing an event stream"):
 * LF, CR and CRLF line ends, even split across chunks; comments; multi-line `data`; `id` and
 * `retry`. Runs on a `fetch` body in browsers and Node alike (no Node built-ins), and bounds
 * what it buffers.
 */

/** One dispatched event. */
export interface ServerSentEvent {
  /** The `event` field, `message` by default. */
  readonly event: string;
  /** The `data` lines joined with `\n`. */
  readonly data: string;
}

/** Incremental parser: feed it text, it returns the events each piece completed. */
export class EventStreamParser {
  readonly #maxChars: number;
  #buffer = '';
  #data: string[] = [];
  #dataChars = 0;
  #event = '';
  #id: string | undefined;
  #lastEventId: string | undefined;
  #retry: number | undefined;

  /** @param maxChars bound on one event (its pending line plus its data), so a stream cannot grow memory forever. */
  constructor(maxChars: number) {
    this.#maxChars = maxChars;
  }

  /** The stream's last event id (it persists across events; resume with it), if any. */
  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  /** The reconnection time the stream asked for (`retry`), in ms, if any. */
  get retry(): number | undefined {
    return this.#retry;
  }

  /** Parses `text`; `final` marks the end of the stream (a trailing CR ends a line). */
  push(text: string, final = false): ServerSentEvent[] {
    const events: ServerSentEvent[] = [];
    const buffer = this.#buffer + text;
    let start = 0;
    for (;;) {
      let end = start;
      while (end < buffer.length && buffer[end] !== '\n' && buffer[end] !== '\r') end++;
      if (end === buffer.length) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (buffer[end] === '\r' && end + 1 === buffer.length && !final) break;
      const event = this.#line(buffer.slice(start, end));
      if (event) events.push(event);
      start = end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1);
    }
    this.#buffer = buffer.slice(start);
    if (this.#buffer.length + this.#dataChars > this.#maxChars) {
      throw new RangeError(`An event of the stream exceeds ${this.#maxChars} characters.`);
    }
    // An unterminated last event is discarded at the end of the stream, as the spec says.
    return events;
  }

  #line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.#data.push(value);
      this.#dataChars += value.length + 1;
    } else if (field === 'event') {
      this.#event = value;
    } else if (field === 'id') {
      if (!value.includes('\0')) this.#id = value;
    } else if (field === 'retry') {
      if (/^\d+$/.test(value)) this.#retry = Number(value);
    }
    return undefined;
  }

  #dispatch(): ServerSentEvent | undefined {
    // The last event id is set even by an event without data (e.g. a resumption primer).
    this.#lastEventId = this.#id;
    const hasData = this.#data.length > 0;
    const event: ServerSentEvent = { event: this.#event || 'message', data: this.#data.join('\n') };
    this.#data = [];
    this.#dataChars = 0;
    this.#event = '';
    return hasData ? event : undefined;
  }
}

/** Default bound on one event: 16 Mi characters. */
export const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/**
 * Reads the events of an event-stream body until it ends (or its fetch is aborted). The
 * `parser` keeps the stream's state (last event id, retry) for the caller.
 */
export async function* readEventStream(
  body: ReadableStream<Uint8Array>,
  parser: EventStreamParser = new EventStreamParser(MAX_EVENT_CHARS),
): AsyncGenerator<ServerSentEvent, void> {
  // TextDecoder drops a leading BOM, as the event-stream format requires.
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        yield* parser.push(decoder.decode(), true);
        return;
      }
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
  } finally {
    // Stop reading when the consumer stops early (break, throw, abort).
    reader.cancel().catch(() => {});
  }
}
