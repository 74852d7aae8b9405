/**
 * @module upstream/answer
 * Reading the answer to a message POSTed to a Streamable HTTP server, the same way on every
 * path that POSTs one (the transport and the one-shot path): a 4xx carrying a JSON-RPC error for
 * the request is its answer; any other failure status is a proxy error; 202/204 carry nothing;
 * JSON and event streams carry messages, handed on as they are parsed.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyError } from '../errors.ts';
import { isResponse, type JsonRpcMessage } from '../jsonrpc.ts';
import { isEventStream, isJson, isMessageEvent, readEventStream } from './event-stream.ts';
import type { FlowGate } from './flow-gate.ts';
import { discard, drain, headerValue, type UpstreamHttp, type UpstreamResponse } from './http.ts';
import { parseMessages } from './message-source.ts';
import { rejectStatus, rpcErrorFor } from './status.ts';

/** What reading one answer needs. */
export interface AnswerReading {
  readonly http: UpstreamHttp;
  /** The message the answer is to. */
  readonly message: JsonRpcMessage;
  /** The upstream session id as known before the answer (scrubbed from error messages). */
  readonly sessionId: string | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Pauses reading an event stream while the reader downstream is behind. */
  readonly gate?: FlowGate | undefined;
  /** Takes the messages of the answer, batch by batch. */
  readonly deliver: (messages: readonly JsonRpcMessage[]) => void;
  /**
   * Resumes the answer's event stream after the event `lastEventId` (a GET with `Last-Event-ID`,
   * MCP 2025-11-25 "Resumability and Redelivery"); none: a stream that ends early is not resumed.
   */
  readonly resume?:
    | ((lastEventId: string, signal: AbortSignal | undefined) => Promise<UpstreamResponse>)
    | undefined;
  /** The server accepted the message (2xx), issuing this session id, if any: before any body is read. */
  readonly accepted?: ((issuedSessionId: string | undefined) => void) | undefined;
}

/** Reads the answer to one POSTed message; throws the matching {@link ProxyError} on failure. */
export async function readAnswer(response: UpstreamResponse, reading: AnswerReading): Promise<void> {
  const { http, message, signal, deliver } = reading;
  const context = { sessionId: reading.sessionId };
  const { status } = response;
  if (status >= 400 && status < 500 && 'id' in message && isJson(response)) {
    // A server may answer a request it refuses with a 4xx and a JSON-RPC error for that very
    // request (MCP 2026-07-28 does: version negotiation, header validation). That error is the
    // answer the caller needs, with its data, not a proxy error.
    const text = await http.readText(response, signal);
    const answer = rpcErrorFor(text, message.id, context);
    if (answer) {
      deliver([answer]);
      return;
    }
    const replay = Readable.from([Buffer.from(text)]) as UpstreamResponse['body'];
    await rejectStatus(http, { ...response, body: replay }, context);
  }
  if (status < 200 || status >= 300) await rejectStatus(http, response, context);
  reading.accepted?.(headerValue(response.headers, 'mcp-session-id'));
  if (status === 202 || status === 204) {
    // An empty body keeps the connection for reuse; anything else (a 202 trickling a body
    // forever) is not read.
    if (status === 204 || headerValue(response.headers, 'content-length') === '0') drain(response);
    else discard(response);
    return;
  }
  if (!('method' in message && 'id' in message)) {
    // A notification or a response has no answer (the spec says 202): whatever else a server
    // sends is not read, so a stream trickling on cannot hold the call (issue 14, finding 6).
    discard(response);
    return;
  }
  if (isEventStream(response)) {
    await readAnswerStream(response, reading, message.id);
    return;
  }
  if (isJson(response)) {
    deliver(parseMessages(await http.readText(response, signal)));
    return;
  }
  discard(response);
  throw new ProxyError(
    'upstream_protocol_error',
    'The MCP server answered with neither JSON nor an event stream: is this an MCP endpoint?',
    { data: { upstreamStatus: status } },
  );
}

/** Resumptions of one answer in a row that deliver no message before it is given up on. */
const MAX_IDLE_RESUMES = 3;
/**
 * Resumptions of one answer in all (review10 RESUME-2): a server delivering a message on each,
 * at the shortest wait, is resumed for {@link MAX_RESUMES} × {@link MIN_RETRY_MS} at least.
 */
const MAX_RESUMES = 1_000;
/** The longest `retry:` a server may ask the proxy to wait before resuming (a call has its deadline). */
const MAX_RETRY_MS = 5_000;
/** The shortest wait before resuming, whatever `retry:` the server asked for (`retry: 0` included). */
const MIN_RETRY_MS = 100;
/** The wait before resuming when the server named none. */
const DEFAULT_RETRY_MS = 1_000;

/**
 * Reads a request's event stream until its answer. A server may close the stream before the
 * answer once it sent an event id (SSE polling, SEP-1699): the stream is then resumed from the
 * last id after the server's `retry:` wait (within {@link MIN_RETRY_MS}..{@link MAX_RETRY_MS}),
 * for as long as resumptions deliver messages: {@link MAX_IDLE_RESUMES} in a row that deliver
 * none (new event ids are not enough: review10 RESUME-2), or {@link MAX_RESUMES} in all, fail
 * the call then, rather than leave it waiting for its deadline.
 */
async function readAnswerStream(
  first: UpstreamResponse,
  reading: AnswerReading,
  awaited: string | number,
): Promise<void> {
  const { http, signal, deliver } = reading;
  let answered = false;
  let delivered = false;
  let lastEventId: string | undefined;
  let retryMs = DEFAULT_RETRY_MS;
  const onEvent = (event: { id?: string | undefined; event?: string | undefined; data: string }) => {
    if (event.id) lastEventId = event.id;
    if (!isMessageEvent(event)) return false;
    const messages = parseMessages(event.data);
    deliver(messages);
    delivered = true;
    // A request's stream is over with its answer (the server should close it then): one that
    // trickles on must not hold a socket for a finished call (issue 14, finding 6).
    answered = messages.some((m) => isResponse(m) && m.id === awaited);
    return answered;
  };
  const onRetry = (ms: number) => {
    retryMs = Math.min(Math.max(ms, MIN_RETRY_MS), MAX_RETRY_MS);
  };
  let response = first;
  for (let idle = 0, resumes = 0; ; resumes++) {
    delivered = false;
    await readEventStream(response, http.responseLimitBytes, onEvent, signal, reading.gate, onRetry);
    idle = delivered ? 0 : idle + 1;
    if (answered || lastEventId === undefined || reading.resume === undefined) return;
    if (idle > MAX_IDLE_RESUMES || resumes >= MAX_RESUMES)
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server closed its answer stream again and again without the answer.',
        { data: { resumptions: resumes } },
      );
    const resumeFrom = headerSafeEventId(lastEventId);
    await sleep(retryMs, undefined, { signal });
    response = await reading.resume(resumeFrom, signal);
    if (response.status < 200 || response.status >= 300)
      await rejectStatus(http, response, { sessionId: reading.sessionId });
    if (!isEventStream(response)) {
      discard(response);
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server resumed an answer stream with no event stream.',
      );
    }
  }
}

/** What an HTTP header value may hold (tab, visible ASCII and space, Latin-1 beyond). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The event id to resume from, as a `Last-Event-ID` header value: an id no header can carry
 * (a character beyond Latin-1, a control character) is the server's protocol error (review10
 * RESUME-9), not the HTTP client's exception.
 */
function headerSafeEventId(id: string): string {
  if (HEADER_VALUE.test(id)) return id;
  throw new ProxyError(
    'upstream_protocol_error',
    'The MCP server named an event id no Last-Event-ID header can carry: its answer stream cannot be resumed.',
  );
}
