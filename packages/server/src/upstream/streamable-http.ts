/**
 * @module upstream/streamable-http
 * MCP Streamable HTTP client transport (protocol 2025-03-26 and later): every message is a
 * POST; the answer is a JSON body, an event stream, or 202 for notifications and responses.
 * `Mcp-Session-Id` and `MCP-Protocol-Version` are carried once known.
 */
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import { declaredVersion, isModernVersion, metadataHeaders } from '../protocol/request-metadata.ts';
import { isEventStream, isJson, isMessageEvent, readEventStream } from './event-stream.ts';
import { FlowGate } from './flow-gate.ts';
import { discard, drain, headerValue, type UpstreamHttp } from './http.ts';
import { MessageSource, parseMessages } from './message-source.ts';
import { rejectStatus } from './status.ts';
import type { SendOptions, UpstreamTransport } from './transport.ts';

/** How to reach one Streamable HTTP endpoint. */
export interface StreamableHttpOptions {
  readonly url: URL;
  readonly http: UpstreamHttp;
  /** Sent upstream as `Authorization: Bearer …`, nowhere else. */
  readonly bearerToken?: string | undefined;
  /** Resume an existing upstream session. */
  readonly sessionId?: string | undefined;
  /** Protocol version already negotiated for that session. */
  readonly protocolVersion?: string | undefined;
  /**
   * Long-lived use (a bridged session): open the GET stream for server-initiated messages once
   * the session is initialized, and end the upstream session (DELETE) on close.
   */
  readonly longLived?: boolean;
  /** Headers sent with every POST as they are (e.g. a caller's `Mcp-Param-*`). */
  readonly extraHeaders?: Readonly<Record<string, string>> | undefined;
}

/** Streamable HTTP transport to one upstream server. */
export class StreamableHttpTransport extends MessageSource implements UpstreamTransport {
  readonly #options: StreamableHttpOptions;
  readonly #closer = new AbortController();
  readonly #gate = new FlowGate();
  #sessionId: string | undefined;

  constructor(options: StreamableHttpOptions) {
    super(options.protocolVersion);
    this.#options = options;
    this.#sessionId = options.sessionId;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  async start(): Promise<void> {}

  pause(): void {
    this.#gate.pause();
  }

  resume(): void {
    this.#gate.resume();
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    const { http, url } = this.#options;
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closer.signal])
      : this.#closer.signal;
    const response = await http.send(url, {
      method: 'POST',
      headers: {
        ...this.#headers({
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        }),
        ...this.#options.extraHeaders,
        // A 2026-07-28 request carries its metadata in headers too; they must match the body.
        ...(isModernVersion(declaredVersion(message)) ? metadataHeaders(message) : {}),
      },
      body: JSON.stringify(message),
      signal,
    });
    if (response.status < 200 || response.status >= 300) {
      await rejectStatus(http, response, { sessionId: this.#sessionId });
    }
    const issued = headerValue(response.headers, 'mcp-session-id');
    if (issued) this.#sessionId = issued;
    if (this.#options.longLived && 'method' in message && message.method === 'notifications/initialized') {
      void this.#openStandalone();
    }

    if (response.status === 202 || response.status === 204) {
      drain(response);
      return;
    }
    if (isEventStream(response)) {
      await readEventStream(
        response,
        http.responseLimitBytes,
        (event) => {
          if (isMessageEvent(event)) this.deliver(parseMessages(event.data));
        },
        signal,
        this.#gate,
      );
      return;
    }
    if (isJson(response)) {
      this.deliver(parseMessages(await http.readText(response, signal)));
      return;
    }
    discard(response);
    throw new ProxyError(
      'upstream_protocol_error',
      'The MCP server answered with neither JSON nor an event stream: is this an MCP endpoint?',
      { data: { upstreamStatus: response.status } },
    );
  }

  /** Ends the upstream session (HTTP DELETE), when there is one. */
  async terminateSession(): Promise<void> {
    if (this.#sessionId === undefined) return;
    const { http, url } = this.#options;
    const response = await http.send(url, { method: 'DELETE', headers: this.#headers({}) });
    drain(response);
  }

  /**
   * The GET stream carries server-initiated requests and notifications. A server that offers
   * none answers 405, which is fine: everything then rides on POST answers.
   */
  async #openStandalone(): Promise<void> {
    const { http, url } = this.#options;
    try {
      const response = await http.send(url, {
        method: 'GET',
        headers: this.#headers({ accept: 'text/event-stream' }),
        signal: this.#closer.signal,
        streaming: true,
      });
      if (response.status !== 200 || !isEventStream(response)) {
        drain(response);
        return;
      }
      await readEventStream(
        response,
        http.responseLimitBytes,
        (event) => {
          if (isMessageEvent(event)) this.deliver(parseMessages(event.data));
        },
        this.#closer.signal,
        this.#gate,
      );
    } catch (error) {
      if (!this.#closer.signal.aborted) this.onerror?.(error as ProxyError);
    }
  }

  async close(): Promise<void> {
    if (this.#closer.signal.aborted) return;
    if (this.#options.longLived) this.terminateSession().catch(() => {});
    this.#closer.abort(new ProxyError('upstream_unreachable', 'The upstream connection was closed.'));
    this.onclose?.();
  }

  #headers(base: Record<string, string>): Record<string, string> {
    const headers = base;
    if (this.#options.bearerToken) headers.authorization = `Bearer ${this.#options.bearerToken}`;
    if (this.#sessionId) headers['mcp-session-id'] = this.#sessionId;
    if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
    return headers;
  }
}
