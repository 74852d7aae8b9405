/**
 * @module upstream/streamable-http
 * MCP Streamable HTTP client transport (protocol 2025-03-26 and later): every message is a
 * POST; the answer is a JSON body, an event stream, or 202 for notifications and responses.
 * `Mcp-Session-Id` and `MCP-Protocol-Version` are carried once known.
 */
import { linkAbort } from '../abort.ts';
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import { readAnswer } from './answer.ts';
import { isEventStream, isJson, isMessageEvent, readEventStream } from './event-stream.ts';
import { FlowGate } from './flow-gate.ts';
import { type BearerSource, type UpstreamAccept, upstreamHeaders } from './headers.ts';
import { discard, drain, type UpstreamHttp } from './http.ts';
import { MessageSource, parseMessages } from './message-source.ts';
import type { ParamHeaderCatalog } from './param-headers.ts';
import { declaredVersion, isModernVersion, metadataHeaders } from './request-metadata.ts';
import type { SendOptions, UpstreamTransport } from './transport.ts';

/** How to reach one Streamable HTTP endpoint. */
export interface StreamableHttpOptions {
  readonly url: URL;
  readonly http: UpstreamHttp;
  /** Sent upstream as `Authorization: Bearer …`, nowhere else. */
  readonly bearerToken?: BearerSource | undefined;
  /** Resume an existing upstream session. */
  readonly sessionId?: string | undefined;
  /** Protocol version already negotiated for that session. */
  readonly protocolVersion?: string | undefined;
  /**
   * Long-lived use (a held session): open the GET stream for server-initiated messages once
   * the session is initialized, and end the upstream session (DELETE) on close.
   */
  readonly longLived?: boolean;
  /** Headers sent with every POST as they are (e.g. a caller's `Mcp-Param-*`). */
  readonly extraHeaders?: Readonly<Record<string, string>> | undefined;
  /** Learns tools' `x-mcp-header` declarations and supplies the headers calls need. */
  readonly paramHeaders?: ParamHeaderCatalog | undefined;
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
    const link = linkAbort([options.signal, this.#closer.signal]);
    try {
      await this.#send(message, link.signal, options.streaming === true);
    } finally {
      link.dispose();
    }
  }

  async #send(message: JsonRpcMessage, signal: AbortSignal, streaming: boolean): Promise<void> {
    const { http, url } = this.#options;
    await this.#learnParamHeaders(message, signal);
    const response = await http.send(url, {
      method: 'POST',
      headers: this.#headers(
        'message',
        this.#options.extraHeaders,
        // A 2026-07-28 request carries its metadata in headers too; they must match the body.
        isModernVersion(declaredVersion(message)) ? this.#modernHeaders(message) : undefined,
      ),
      body: JSON.stringify(message),
      signal,
      streaming,
    });
    await readAnswer(response, {
      http,
      message,
      sessionId: this.#sessionId,
      signal,
      gate: this.#gate,
      deliver: (messages) => this.deliver(messages),
      resume: (lastEventId, resumeSignal) =>
        http.send(url, {
          method: 'GET',
          headers: this.#headers('stream', { 'last-event-id': lastEventId }),
          signal: resumeSignal ?? signal,
          streaming: true,
        }),
      accepted: (issued) => {
        if (issued) this.#sessionId = issued;
        if (
          this.#options.longLived &&
          'method' in message &&
          message.method === 'notifications/initialized'
        ) {
          void this.#openStandalone();
        }
      },
    });
  }

  /** Ends the upstream session (HTTP DELETE), when there is one. */
  async terminateSession(): Promise<void> {
    if (this.#sessionId === undefined) return;
    const { http, url } = this.#options;
    const response = await http.send(url, { method: 'DELETE', headers: this.#headers(undefined) });
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
        headers: this.#headers('stream'),
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

  /**
   * A body-only caller may call a tool without having listed it through the proxy: look the
   * tool's `x-mcp-header` declarations up once (a `tools/list` of our own, never delivered).
   */
  async #learnParamHeaders(message: JsonRpcMessage, signal: AbortSignal): Promise<void> {
    const catalog = this.#options.paramHeaders;
    if (!catalog || !('method' in message) || message.method !== 'tools/call') return;
    const name = message.params?.name;
    if (typeof name !== 'string' || !isModernVersion(declaredVersion(message))) return;
    if (!catalog.needsLookup(this.#options.url.href, name)) return;
    const list = {
      jsonrpc: '2.0' as const,
      id: `mcp-proxy-tools-${Date.now()}`,
      method: 'tools/list',
      params: { _meta: message.params?._meta },
    };
    try {
      const response = await this.#options.http.send(this.#options.url, {
        method: 'POST',
        headers: this.#headers('message', metadataHeaders(list)),
        body: JSON.stringify(list),
        signal,
      });
      // Each answer is learnt from as it comes and dropped: keeping every event of a stream
      // until it ends let an upstream grow the heap without bound (issue 14, finding 5).
      const learn = (answers: JsonRpcMessage[]) => {
        for (const answer of answers)
          if ('result' in answer) catalog.learn(this.#options.url.href, answer.result);
      };
      if (response.status === 200 && isEventStream(response)) {
        await readEventStream(response, this.#options.http.responseLimitBytes, (event) => {
          if (isMessageEvent(event)) learn(parseMessages(event.data));
        });
      } else if (response.status === 200 && isJson(response)) {
        learn(parseMessages(await this.#options.http.readText(response, signal)));
      } else {
        discard(response);
      }
    } catch {
      // Best effort: without the declarations the call goes out as the caller sent it.
    }
  }

  #modernHeaders(message: JsonRpcMessage): Record<string, string> {
    const headers = metadataHeaders(message);
    const catalog = this.#options.paramHeaders;
    if (
      catalog &&
      'method' in message &&
      message.method === 'tools/call' &&
      typeof message.params?.name === 'string'
    ) {
      Object.assign(
        headers,
        catalog.headersFor(this.#options.url.href, message.params.name, message.params.arguments),
      );
    }
    return headers;
  }

  protected override deliver(messages: readonly JsonRpcMessage[]): void {
    const catalog = this.#options.paramHeaders;
    if (catalog) {
      for (const message of messages) {
        if ('result' in message) catalog.learn(this.#options.url.href, message.result);
      }
    }
    super.deliver(messages);
  }

  #headers(
    accept: UpstreamAccept | undefined,
    ...extra: ReadonlyArray<Readonly<Record<string, string>> | undefined>
  ): Record<string, string> {
    const parts = {
      accept,
      jsonBody: accept === 'message',
      bearerToken: this.#options.bearerToken,
      sessionId: this.#sessionId,
      protocolVersion: this.protocolVersion,
    };
    return upstreamHeaders(parts, ...extra);
  }
}
