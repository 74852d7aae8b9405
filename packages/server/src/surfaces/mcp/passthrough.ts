/**
 * @module surfaces/mcp/passthrough
 * Stateless forwarding of Streamable HTTP to a Streamable HTTP upstream: the request goes up
 * with its MCP headers, the answer (JSON, or an event stream with its event ids intact, so
 * `Last-Event-ID` resumption works end to end) comes back as it is. The rewrites: the session
 * id, sealed to the caller's principal and the target, so the upstream's own id never reaches the
 * caller (issue 14, finding 2); and the `Content-Type`, relayed only as one canonical MCP type or
 * as opaque bytes, always under a sandboxing CSP (finding 10). Every upstream body relayed as-is
 * goes through {@link PassThrough.relay}.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UpstreamTarget } from '../../dispatch/connector.ts';
import { ProxyError } from '../../errors.ts';
import { recordingReach } from '../../identity/live-requests.ts';
import { onResponseClosed } from '../../response-closed.ts';
import type { SessionIdSealer } from '../../sessions/session-id-sealer.ts';
import { relayedContentType } from '../../upstream/content-type.ts';
import { isEventStream } from '../../upstream/event-stream.ts';
import { upstreamHeaders } from '../../upstream/headers.ts';
import {
  discard,
  drain,
  headerValue,
  tooLarge,
  toUpstreamError,
  type UpstreamHttp,
  type UpstreamResponse,
} from '../../upstream/http.ts';
import { scrubBody } from '../../upstream/scrub.ts';

/** Inbound headers forwarded upstream as they are (and, per MCP 2026-07-28, any `Mcp-Param-*`). */
const FORWARDED: ReadonlySet<string> = new Set([
  'accept',
  'content-type',
  'mcp-protocol-version',
  'last-event-id',
  'mcp-method',
  'mcp-name',
]);
/** Upstream response headers relayed to the caller (`Content-Type` is rewritten, see below). */
const RELAYED = ['mcp-protocol-version', 'www-authenticate', 'retry-after', 'cache-control', 'allow'];

/**
 * The policy of every relayed upstream response, whatever its type (issue #14.10, review F1):
 * were a body ever rendered as a document on the proxy's origin, it could run no script, load
 * nothing and reach no storage there. CSP binds documents only, so `fetch` and `EventSource`
 * consumers of JSON and event streams see no difference. Set here, per route, rather than by a
 * global hook: the proxy's own pages (an OAuth callback, later) choose their own policy.
 */
export const RELAYED_CONTENT_POLICY = "sandbox; default-src 'none'";

/** An HTTP upstream as the dispatch layer resolved it. */
type HttpTarget = Extract<UpstreamTarget, { readonly url: URL }>;

/** One request passed through: its target's URL, name, credential and reach, and the session. */
export interface PassThroughRequest extends Pick<HttpTarget, 'url' | 'name' | 'bearerToken' | 'mayReach'> {
  /** The upstream's session id, unsealed. */
  readonly upstreamSessionId?: string | undefined;
  /** The caller's sealed id (handed back while the upstream keeps its id), re-sealed if stale. */
  readonly sealedSessionId?: string | undefined;
  /** True when `sealedSessionId` is a re-seal under the newest secret: every answer carries it. */
  readonly resealed?: boolean | undefined;
  /** What the sealed id binds to. */
  readonly ownerId: string;
  readonly targetKey: string;
  readonly body?: string | undefined;
  readonly signal: AbortSignal;
}

/** Forwards Streamable HTTP requests to Streamable HTTP upstreams. */
export class PassThrough {
  readonly #http: UpstreamHttp;
  readonly #sealer: SessionIdSealer;

  constructor(http: UpstreamHttp, sealer: SessionIdSealer) {
    this.#http = http;
    this.#sealer = sealer;
  }

  /** Sends the inbound request upstream; the caller relays or inspects the response. */
  async send(request: FastifyRequest, forward: PassThroughRequest): Promise<UpstreamResponse> {
    const forwarded: Record<string, string> = {};
    const inbound = request.headers;
    for (const name in inbound) {
      // MCP 2026-07-28: intermediaries forward Mcp-Param-* headers they do not recognise.
      if (!FORWARDED.has(name) && !name.startsWith('mcp-param-')) continue;
      const value = inbound[name];
      if (typeof value === 'string') forwarded[name] = value;
    }
    // The caller's own Accept and protocol version go as they came; the proxy's parts win.
    const own = upstreamHeaders({
      jsonBody: request.method === 'POST',
      bearerToken: forward.bearerToken,
      sessionId: forward.upstreamSessionId,
    });
    const headers = { ...forwarded, ...own };
    // A reload judges the answer by where it comes from (identity/live-requests.ts).
    return this.#http.reaching(recordingReach(request, forward)).send(forward.url, {
      method: request.method as 'GET' | 'POST' | 'DELETE',
      headers,
      ...(forward.body === undefined ? {} : { body: forward.body }),
      signal: forward.signal,
      streaming: true,
    });
  }

  /**
   * Relays an upstream response to the caller, sealing any session id it carries. An event
   * stream is streamed event by event (sent whole when it ended within the turn its relay began);
   * any other body (a JSON answer) is read whole first, within the response size limit, and sent
   * as one buffer with its length: cheaper than a stream per request, and a failure while reading
   * becomes a proper error reply instead of a cut body.
   */
  async relay(
    reply: FastifyReply,
    response: UpstreamResponse,
    forward: PassThroughRequest,
  ): Promise<FastifyReply> {
    let sessionId: string | undefined;
    try {
      sessionId = this.sessionIdFor(headerValue(response.headers, 'mcp-session-id'), forward);
    } catch (error) {
      discard(response);
      throw error;
    }
    if (response.status === 202 || response.status === 204) {
      drain(response);
      this.#relayHeaders(reply, response, sessionId, false);
      return reply.send();
    }
    if (!isEventStream(response)) {
      let body = await this.#http.readBody(response, forward.signal);
      // An error answer may quote the session id it refuses: callers only ever see it sealed.
      if (response.status >= 400) body = scrubBody(body, [forward.upstreamSessionId]);
      this.#relayHeaders(reply, response, sessionId);
      return reply.send(body);
    }
    const limit = this.#http.responseLimitBytes;
    // Most answers to a POST are a whole stream by now (one event, then the end): such a stream
    // goes as one buffer with its length, like JSON, at the cost of JSON. One still open at the
    // end of this turn of the event loop is streamed from there.
    const first = await firstTurn(response, limit, forward.signal);
    this.#relayHeaders(reply, response, sessionId);
    if (first.ended) return reply.send(first.bytes);
    const source = response.body;
    const limited = relayEvents(first.counter, reply.raw);
    // An SSE comment first, so the caller gets the headers now, not with the first event; when
    // an event is already here, the headers go with it.
    limited.push(first.bytes.length === 0 ? Buffer.from(': proxied\n\n') : first.bytes);
    // Piped by hand, not with `stream.pipeline`: that builds an AbortController and aborts it
    // (a DOMException with a stack) per stream, ~5% of the CPU of an answer relayed this way.
    // The caller or the upstream going away mid-stream tears down both sides.
    source.on('error', (error) => limited.destroy(error));
    limited.once('close', () => {
      if (!source.readableEnded) discard(response);
    });
    source.pipe(limited);
    return reply.send(limited);
  }

  /**
   * The session id the caller gets for one the upstream issued: sealed, or the caller's own
   * sealed id when the upstream kept its session (no new seal per response: fewer random nonces
   * under one key, and a stable id for the caller).
   */
  sessionIdFor(issued: string | undefined, forward: PassThroughRequest): string | undefined {
    // Servers need not repeat their id on each answer; a re-sealed one must reach the caller.
    if (!issued) return forward.resealed ? forward.sealedSessionId : undefined;
    if (issued === forward.upstreamSessionId && forward.sealedSessionId) return forward.sealedSessionId;
    return this.#sealer.seal(issued, forward.ownerId, forward.targetKey);
  }

  #relayHeaders(
    reply: FastifyReply,
    response: UpstreamResponse,
    sessionId: string | undefined,
    hasBody = true,
  ): void {
    // HTTP allows three digits; a status Node cannot send is the upstream's error, not ours.
    if (response.status < 100 || response.status > 599) {
      drain(response);
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server answered with an invalid HTTP status.',
        {
          data: { upstreamStatus: response.status },
        },
      );
    }
    const { headers } = response;
    for (const name of RELAYED) {
      const value = headerValue(headers, name);
      if (value !== undefined) reply.header(name, value);
    }
    // Only one plain JSON or event-stream type is relayed, in its canonical spelling; anything
    // else (HTML, `application/json+xml`, a list of types) goes as opaque bytes.
    if (headers['content-type'] !== undefined || hasBody) {
      reply.header('content-type', relayedContentType(headers['content-type']));
    }
    reply.header('content-security-policy', RELAYED_CONTENT_POLICY);
    if (sessionId) reply.header('mcp-session-id', sessionId);
    reply.code(response.status);
  }
}

/**
 * The relay of an upstream event stream: caps it per event (the bytes between blank lines), so a
 * long-lived stream may carry many events but no single huge one, and keeps the stream's end
 * with the event before it. SSE lines end in CRLF, LF or a lone CR, so a blank line is any two
 * line ends in a row, and every such pair holds `\n\n`, `\r\r` or `\n\r` (CRLF CRLF holds
 * `\n\r`); one that straddles two chunks counts too (issue 14, finding 10: a CRLF-framed stream
 * used to be cut at the limit as if it were one event).
 *
 * Why the end matters (issue 14, finding 12): an upstream that answers a POST writes its last
 * event and ends the stream in one write, so its client sees the stream complete as soon as it
 * reads the answer, and the connection is free for the client's next request. Relayed through a
 * stream pipeline, the chunk terminator would trail the event by a few event-loop turns: the
 * client, already acting on the answer, finds that connection still busy and sends its next
 * requests on others, in an order the server does not see as sent. The SDK client opens its GET
 * stream and then sends `tools/call`; when the call overtook the GET, a server that sends
 * `sampling/createMessage` on the GET stream (the conformance suite's own example server) found
 * no stream and dropped it, and the call hung for 60 s. So the response's socket stays corked
 * from a relayed chunk until the next turn of the event loop: an end that follows within the same
 * turn leaves in the same write, and a stream that goes on is delayed by one turn at most.
 */
function relayEvents(counter: EventSizeCounter, response: ServerResponse): Transform {
  // The socket itself, not the response: a corked response buffers chunks that `end()` drops.
  let corked: Socket | undefined;
  const uncork = () => {
    corked?.uncork();
    corked = undefined;
  };
  // `end()` has queued the terminator by `prefinish`: it leaves with the last event then.
  response.once('prefinish', uncork);
  onResponseClosed(response, uncork);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (!counter.fits(chunk)) {
        callback(new Error('upstream response exceeds the size limit'));
        return;
      }
      const socket = response.socket;
      if (corked === undefined && socket !== null && !socket.destroyed && !response.writableEnded) {
        corked = socket;
        socket.cork();
        setImmediate(uncork);
      }
      callback(null, chunk);
    },
  });
}

/**
 * The bytes of the event in progress (since the last blank line), across chunks: no single event
 * may exceed the limit, however many a stream carries.
 */
class EventSizeCounter {
  readonly #limit: number;
  #count = 0;
  #previous = -1;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Counts `chunk`; false once the event in progress is larger than the limit. */
  fits(chunk: Buffer): boolean {
    const end = lastEventEnd(chunk, this.#previous);
    this.#count = end === -1 ? this.#count + chunk.length : chunk.length - end;
    if (chunk.length > 0) this.#previous = chunk[chunk.length - 1] as number;
    return this.#count <= this.#limit;
  }
}

/** What an event stream sent in the turn of the event loop its relay began in. */
interface FirstTurn {
  /** The bytes so far (all of them when `ended`). */
  readonly bytes: Buffer;
  /** True when the stream ended within the turn. */
  readonly ended: boolean;
  /** The per-event count, carried on to the rest of the stream. */
  readonly counter: EventSizeCounter;
}

/**
 * Reads an event stream until it ends or the current turn of the event loop does, whichever
 * comes first (an upstream that writes its answer and ends in one write has its end queued by
 * then). A failure while reading becomes the caller's error reply, not a cut stream.
 */
function firstTurn(response: UpstreamResponse, limit: number, signal: AbortSignal): Promise<FirstTurn> {
  const body = response.body;
  const counter = new EventSizeCounter(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  const { promise, resolve, reject } = Promise.withResolvers<FirstTurn>();
  const stop = () => {
    clearImmediate(turn);
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('error', onError);
  };
  const settle = (ended: boolean) => {
    stop();
    if (!ended) body.pause();
    const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
    resolve({ bytes, ended, counter });
  };
  const onData = (chunk: Buffer) => {
    if (!counter.fits(chunk)) {
      stop();
      discard(response);
      reject(tooLarge(limit));
      return;
    }
    chunks.push(chunk);
    size += chunk.length;
  };
  const onEnd = () => settle(true);
  const onError = (error: unknown) => {
    stop();
    discard(response);
    reject(toUpstreamError(error, signal));
  };
  const turn = setImmediate(settle, false);
  body.on('data', onData);
  body.once('end', onEnd);
  body.once('error', onError);
  return promise;
}

const LF = 0x0a;
const CR = 0x0d;
/** How far from a chunk's end {@link lastEventEnd} looks byte by byte before searching it all. */
const TAIL_BYTES = 8;

/** Offset just past the last blank line in `chunk` (`previous`: the byte before it), or -1. */
function lastEventEnd(chunk: Buffer, previous: number): number {
  // A chunk usually ends with its event: its last few bytes are looked at first, because the
  // three `lastIndexOf` below each read the whole chunk when their pair is absent (most streams
  // only ever use one of the three).
  const tail = Math.max(0, chunk.length - TAIL_BYTES);
  for (let at = chunk.length - 2; at >= tail; at--) {
    const byte = chunk[at];
    const next = chunk[at + 1];
    if ((byte === LF && (next === LF || next === CR)) || (byte === CR && next === CR)) return at + 2;
  }
  const at = Math.max(chunk.lastIndexOf('\n\n'), chunk.lastIndexOf('\r\r'), chunk.lastIndexOf('\n\r'));
  if (at !== -1) return at + 2;
  const first = chunk[0];
  const straddles = (previous === LF && (first === LF || first === CR)) || (previous === CR && first === CR);
  return straddles ? 1 : -1;
}
