/**
 * @module upstream/sse
 * The HTTP+SSE client transport (protocol 2024-11-05): a long-lived GET event stream
 * whose first `endpoint` event names the URL to POST messages to; every answer comes back on
 * the stream. The proxy holds the stream for the life of a proxy session.
 */
import { linkAbort } from '../abort.ts';
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import { isEventStream, isMessageEvent, readEventStream } from './event-stream.ts';
import { FlowGate } from './flow-gate.ts';
import { type BearerSource, upstreamHeaders } from './headers.ts';
import { discard, drain, type UpstreamHttp } from './http.ts';
import { ConnectionSource } from './message-source.ts';
import { rejectStatus } from './status.ts';
import type { SendOptions, UpstreamTransport } from './transport.ts';

/** How to reach one HTTP+SSE endpoint. */
export interface SseOptions {
  readonly url: URL;
  readonly http: UpstreamHttp;
  /** Sent upstream as `Authorization: Bearer …`, nowhere else. */
  readonly bearerToken?: BearerSource | undefined;
  /** How long to wait for the `endpoint` event. */
  readonly handshakeTimeoutMs: number;
}

/** Legacy HTTP+SSE transport to one upstream server. */
export class SseTransport extends ConnectionSource<SseOptions> implements UpstreamTransport {
  readonly #closer = new AbortController();
  readonly #gate = new FlowGate();
  #endpoint: URL | undefined;
  /** The endpoint's session, in the spellings an error message may quote it (never shown). */
  #endpointSecrets: readonly string[] = [];

  async start(): Promise<void> {
    const { http, url, handshakeTimeoutMs } = this.options;
    const handshakeLink = linkAbort([this.#closer.signal], handshakeTimeoutMs);
    const handshake = handshakeLink.signal;
    const response = await http.send(url, {
      method: 'GET',
      headers: upstreamHeaders({ accept: 'stream', bearerToken: this.options.bearerToken }),
      signal: this.#closer.signal,
      streaming: true,
    });
    if (response.status < 200 || response.status >= 300) await rejectStatus(http, response, {});
    if (!isEventStream(response)) {
      discard(response);
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server did not answer GET with an event stream: it speaks neither Streamable HTTP nor HTTP+SSE.',
      );
    }

    const { promise: endpointKnown, resolve, reject } = Promise.withResolvers<void>();
    const onTimeout = () =>
      reject(new ProxyError('upstream_timeout', 'The MCP server sent no SSE endpoint event.'));
    handshake.addEventListener('abort', onTimeout, { once: true });

    const reading = readEventStream(
      response,
      http.responseLimitBytes,
      (event) => {
        if (event.event === 'endpoint') {
          try {
            this.#endpoint = this.#resolveEndpoint(event.data, response.url);
            this.#endpointSecrets = endpointSecrets(event.data.trim(), this.#endpoint);
            resolve();
          } catch (error) {
            reject(error);
          }
        } else if (isMessageEvent(event)) {
          this.deliverText(event.data);
        }
      },
      this.#closer.signal,
      this.#gate,
    );
    reading.then(
      () => {
        reject(new ProxyError('upstream_protocol_error', 'The MCP server closed its event stream.'));
        void this.close();
      },
      (error: unknown) => {
        const failure = ProxyError.is(error)
          ? error
          : new ProxyError('upstream_unreachable', undefined, { cause: error });
        reject(failure);
        if (!this.closed) this.onerror?.(failure);
        void this.close();
      },
    );
    try {
      await endpointKnown;
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      handshake.removeEventListener('abort', onTimeout);
      handshakeLink.dispose();
    }
  }

  pause(): void {
    this.#gate.pause();
  }

  resume(): void {
    this.#gate.resume();
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    const endpoint = this.#endpoint;
    if (!endpoint || this.closed) {
      throw new ProxyError('upstream_unreachable', 'The MCP server event stream is closed.');
    }
    const { http } = this.options;
    const link = linkAbort([options.signal, this.#closer.signal]);
    const signal = link.signal;
    try {
      const response = await http.send(endpoint, {
        method: 'POST',
        headers: upstreamHeaders({ jsonBody: true, bearerToken: this.options.bearerToken }),
        body: JSON.stringify(message),
        signal,
      });
      if (response.status < 200 || response.status >= 300) {
        // The endpoint is the session: a 404 means it ended, and its id is scrubbed from the message.
        const [sessionId, ...secrets] = this.#endpointSecrets;
        await rejectStatus(http, response, { sessionId: sessionId ?? endpoint.href, secrets });
      }
      drain(response);
    } finally {
      link.dispose();
    }
  }

  protected release(): void {
    this.#closer.abort(new ProxyError('upstream_unreachable', 'The upstream connection was closed.'));
  }

  /**
   * The endpoint, read against the URL the stream came from (`base`: after any redirect, as the
   * server meant it: review14 URLPATTERN-3), must stay on the target's origin (the one its
   * credential is for), and within what the caller may reach (its URL grant: review13
   * URLPATTERN-2, `http` is limited to it): a server cannot send the proxy, and the caller's
   * messages, elsewhere.
   */
  #resolveEndpoint(data: string, base: URL): URL {
    let endpoint: URL;
    try {
      endpoint = new URL(data.trim(), base);
    } catch {
      throw new ProxyError('upstream_protocol_error', 'The MCP server sent an invalid SSE endpoint.');
    }
    if (endpoint.origin !== this.options.url.origin) {
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server named an SSE endpoint on another origin.',
      );
    }
    if (!this.options.http.mayReach(endpoint)) {
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server named an SSE endpoint outside the target’s grant (the URLs this caller may reach).',
      );
    }
    return endpoint;
  }
}

/** Shortest path segment or query value taken for a session id wherever its name. */
const MIN_SECRET_LENGTH = 16;

/**
 * An SSE endpoint's session in every form a server may quote it, longest first: the URL
 * as sent and resolved, its path and query, and the parts that look like a session id (values
 * of a `session…` parameter, long path segments and query values). Short parts (`v=1`) are left
 * alone: scrubbing them would garble messages and hide nothing.
 */
function endpointSecrets(raw: string, endpoint: URL): string[] {
  const found = new Set([endpoint.href, raw, endpoint.pathname + endpoint.search, endpoint.search.slice(1)]);
  for (const [name, value] of endpoint.searchParams) {
    if (/session/i.test(name) || value.length >= MIN_SECRET_LENGTH) found.add(value);
  }
  for (const segment of endpoint.pathname.split('/')) {
    if (segment.length >= MIN_SECRET_LENGTH) found.add(decodeURIComponentSafe(segment)).add(segment);
  }
  return [...found].filter((secret) => secret !== '').sort((a, b) => b.length - a.length);
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
