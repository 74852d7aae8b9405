/**
 * @module mcp/passthrough
 * Stateless forwarding of Streamable HTTP to a Streamable HTTP upstream: the request goes up
 * with its MCP headers, the answer (JSON, or an event stream with its event ids intact, so
 * `Last-Event-ID` resumption works end to end) comes back as it is. The only rewrite is the
 * session id, sealed to the caller's proxy token and the target.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
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
    const limited = limitEventBytes(this.#http.responseLimitBytes);
    // An SSE comment first, so the caller gets the headers now, not with the first event.
    limited.push(Buffer.from(': proxied\n\n'));
    pipeline(response.body, limited).catch(() => {
      // The caller or the upstream went away mid-stream; both sides are already torn down.
    });
    return reply.send(limited);
  }

  #relayHeaders(reply: FastifyReply, response: UpstreamResponse, exchange: PassThroughRequest): void {
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
 * Caps a relayed event stream per event (the bytes between blank lines), so a long-lived
 * stream may carry many events but no single huge one. SSE lines end in CRLF, LF or a lone CR,
 * so a blank line is any two line ends in a row, and every such pair holds `\n\n`, `\r\r` or
 * `\n\r` (CRLF CRLF holds `\n\r`); one that straddles two chunks counts too (issue 14,
 * finding 10: a CRLF-framed stream used to be cut at the limit as if it were one event).
 */
function limitEventBytes(limit: number): Transform {
  let count = 0;
  let previous = -1;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const end = lastEventEnd(chunk, previous);
      count = end === -1 ? count + chunk.length : chunk.length - end;
      previous = chunk.length > 0 ? (chunk[chunk.length - 1] as number) : previous;
      if (count > limit) callback(new Error('upstream response exceeds the size limit'));
      else callback(null, chunk);
    },
  });
}

const LF = 0x0a;
const CR = 0x0d;

/** Offset just past the last blank line in `chunk` (`previous`: the byte before it), or -1. */
function lastEventEnd(chunk: Buffer, previous: number): number {
  const at = Math.max(chunk.lastIndexOf('\n\n'), chunk.lastIndexOf('\r\r'), chunk.lastIndexOf('\n\r'));
  if (at !== -1) return at + 2;
  const first = chunk[0];
  const straddles = (previous === LF && (first === LF || first === CR)) || (previous === CR && first === CR);
  return straddles ? 1 : -1;
}
