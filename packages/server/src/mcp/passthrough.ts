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
import { headerValue, type UpstreamHttp, type UpstreamResponse } from '../upstream/http.ts';
import type { SessionIdSealer } from './session-id.ts';

/** Inbound headers forwarded upstream as they are. */
const FORWARDED = [
  'accept',
  'content-type',
  'mcp-protocol-version',
  'last-event-id',
  'mcp-method',
  'mcp-name',
];
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
    for (const name of FORWARDED) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    for (const [name, value] of Object.entries(request.headers)) {
      // MCP 2026-07-28: intermediaries forward Mcp-Param-* headers they do not recognise.
      if (name.startsWith('mcp-param-') && typeof value === 'string') headers[name] = value;
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

  /** Relays an upstream response to the caller, sealing any session id it carries. */
  relay(reply: FastifyReply, response: UpstreamResponse, exchange: PassThroughRequest): FastifyReply {
    for (const name of RELAYED) {
      const value = headerValue(response.headers, name);
      if (value !== undefined) reply.header(name, value);
    }
    const sessionId = headerValue(response.headers, 'mcp-session-id');
    if (sessionId)
      reply.header('mcp-session-id', this.#sealer.seal(sessionId, exchange.ownerId, exchange.targetKey));
    reply.code(response.status);
    if (response.status === 202 || response.status === 204) {
      response.body.resume();
      return reply.send();
    }
    const streaming = isEventStream(response);
    const limited = limitBytes(this.#http.responseLimitBytes, streaming);
    // An SSE comment first, so the caller gets the headers now, not with the first event.
    if (streaming) limited.push(Buffer.from(': proxied\n\n'));
    pipeline(response.body, limited).catch(() => {
      // The caller or the upstream went away mid-stream; both sides are already torn down.
    });
    return reply.send(limited);
  }
}

function isEventStream(response: UpstreamResponse): boolean {
  return (headerValue(response.headers, 'content-type') ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * Caps a relayed body: a JSON body as a whole, an event stream per event (the bytes between
 * blank lines), so a long-lived stream may carry many events but no single huge one.
 */
function limitBytes(limit: number, perEvent: boolean): Transform {
  let count = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (perEvent) {
        const boundary = chunk.lastIndexOf('\n\n');
        count = boundary === -1 ? count + chunk.length : chunk.length - boundary - 2;
      } else {
        count += chunk.length;
      }
      if (count > limit) callback(new Error('upstream response exceeds the size limit'));
      else callback(null, chunk);
    },
  });
}
