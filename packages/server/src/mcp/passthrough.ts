/**
 * @module mcp/passthrough
 * Stateless forwarding of Streamable HTTP to a Streamable HTTP upstream: the request goes up
 * with its MCP headers, the answer (JSON, or an event stream with its event ids intact, so
 * `Last-Event-ID` resumption works end to end) comes back as it is. The only rewrite is the
 * session id, sealed to the caller's proxy token and the target.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { drain, headerValue, type UpstreamHttp, type UpstreamResponse } from '../upstream/http.ts';
import type { SessionIdSealer } from './session-id.ts';

/** Inbound headers forwarded upstream as they are (and, per MCP 2026-07-28, any `Mcp-Param-*`). */
const FORWARDED: ReadonlySet<string> = new Set([
  'accept',
  'content-type',
  'mcp-protocol-version',
  'last-event-id',
  'mcp-method',
  'mcp-name',
]);
/** Upstream response headers relayed to the caller. */
const RELAYED = [
  'content-type',
  'mcp-protocol-version',
  'www-authenticate',
  'retry-after',
  'cache-control',
  'allow',
];

/** One pass-through exchange. */
export interface PassThroughRequest {
  readonly url: URL;
  readonly bearerToken?: string | undefined;
  /** The upstream's session id, unsealed. */
  readonly upstreamSessionId?: string | undefined;
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
  async send(request: FastifyRequest, exchange: PassThroughRequest): Promise<UpstreamResponse> {
    const headers: Record<string, string> = {};
    const inbound = request.headers;
    for (const name in inbound) {
      // MCP 2026-07-28: intermediaries forward Mcp-Param-* headers they do not recognise.
      if (!FORWARDED.has(name) && !name.startsWith('mcp-param-')) continue;
      const value = inbound[name];
      if (typeof value === 'string') headers[name] = value;
    }
    if (request.method === 'POST') headers['content-type'] = 'application/json';
    if (exchange.bearerToken) headers.authorization = `Bearer ${exchange.bearerToken}`;
    if (exchange.upstreamSessionId) headers['mcp-session-id'] = exchange.upstreamSessionId;
    return this.#http.send(exchange.url, {
      method: request.method as 'GET' | 'POST' | 'DELETE',
      headers,
      ...(exchange.body === undefined ? {} : { body: exchange.body }),
      signal: exchange.signal,
      streaming: true,
    });
  }

  /**
   * Relays an upstream response to the caller, sealing any session id it carries. An event
   * stream is streamed event by event; any other body (a JSON answer) is read whole first, within
   * the response size limit, and sent as one buffer with its length: cheaper than a stream per
   * request, and a failure while reading becomes a proper error reply instead of a cut body.
   */
  async relay(
    reply: FastifyReply,
    response: UpstreamResponse,
    exchange: PassThroughRequest,
  ): Promise<FastifyReply> {
    if (response.status === 202 || response.status === 204) {
      drain(response);
      this.#relayHeaders(reply, response, exchange);
      return reply.send();
    }
    if (!isEventStream(response)) {
      const body = await this.#http.readBody(response, exchange.signal);
      this.#relayHeaders(reply, response, exchange);
      return reply.send(body);
    }
    this.#relayHeaders(reply, response, exchange);
    const limited = relayEvents(this.#http.responseLimitBytes, reply.raw);
    // An SSE comment first, so the caller gets the headers now, not with the first event.
    limited.push(Buffer.from(': proxied\n\n'));
    pipeline(response.body, limited).catch(() => {
      // The caller or the upstream went away mid-stream; both sides are already torn down.
    });
    return reply.send(limited);
  }

  #relayHeaders(reply: FastifyReply, response: UpstreamResponse, exchange: PassThroughRequest): void {
    const { headers } = response;
    for (const name of RELAYED) {
      const value = headerValue(headers, name);
      if (value !== undefined) reply.header(name, value);
    }
    const sessionId = headerValue(headers, 'mcp-session-id');
    if (sessionId)
      reply.header('mcp-session-id', this.#sealer.seal(sessionId, exchange.ownerId, exchange.targetKey));
    reply.code(response.status);
  }
}

function isEventStream(response: UpstreamResponse): boolean {
  return (headerValue(response.headers, 'content-type') ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * The relay of an upstream event stream: caps it per event (the bytes between blank lines), so a
 * long-lived stream may carry many events but no single huge one, and keeps the stream's end
 * with the event before it.
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
function relayEvents(limit: number, response: ServerResponse): Transform {
  let count = 0;
  // The socket itself, not the response: a corked response buffers chunks that `end()` drops.
  let corked: Socket | undefined;
  const uncork = () => {
    corked?.uncork();
    corked = undefined;
  };
  // `end()` has queued the terminator by `prefinish`: it leaves with the last event then.
  response.once('prefinish', uncork);
  response.once('close', uncork);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const boundary = chunk.lastIndexOf('\n\n');
      count = boundary === -1 ? count + chunk.length : chunk.length - boundary - 2;
      if (count > limit) {
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
