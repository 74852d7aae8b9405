/**
 * @module transport/streamable
 * The `streamable` transport: the proxy's MCP Streamable HTTP endpoint (`/mcp`, or
 * `/servers/{name}/mcp` for a configured server), spoken as the MCP spec (2025-06-18,
 * 2025-11-25, "Transports") asks of a client: every message POSTed, the answer JSON or an event
 * stream that may carry the server's requests and notifications before the response; the
 * session id from `initialize` sent back with the protocol version; a GET stream for
 * server-initiated messages; a stream that breaks before its response resumed with
 * `Last-Event-ID`; DELETE on close.
 */
import { MCPProxyError, NetworkError } from '../errors.ts';
import { parseJson } from '../json.ts';
import type { FetchInit, FetchLike, FetchResponse } from '../options.ts';
import { callSignal, sleep } from '../signals.ts';
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../types.ts';
import { Peer } from './peer.ts';
import { refusal, unreachable } from './proxy-fetch.ts';
import { EventStreamParser, MAX_EVENT_CHARS, readEventStream } from './sse.ts';
import type { ProxyTarget, SendOptions, ServerListeners, SessionInfo, Transport } from './transport.ts';
import { proxyEndpoint } from './url.ts';

/** What the Streamable HTTP transport needs to know. */
export interface StreamableTransportOptions extends ProxyTarget {
  readonly fetch: FetchLike;
}

/** Resumptions of one answer stream before giving up (each needs a new event id to resume from). */
const MAX_RESUMPTIONS = 3;
/** Consecutive failures of the GET stream before it stays closed. */
const MAX_STREAM_FAILURES = 3;
/** Wait before reconnecting when the server named no `retry`. */
const DEFAULT_RETRY_MS = 1_000;
/** Deadline of the messages the transport sends on its own (answers, cancellations, DELETE). */
const OWN_MESSAGE_TIMEOUT_MS = 10_000;

/** Talks to the proxy's Streamable HTTP endpoint. */
export class StreamableTransport implements Transport {
  readonly streaming = true;
  readonly #options: StreamableTransportOptions;
  readonly #endpoint: string;
  readonly #peer: Peer;
  readonly #lifetime = new AbortController();
  #sessionId: string | undefined;
  #protocolVersion: string | undefined;
  #standalone: AbortController | undefined;

  constructor(options: StreamableTransportOptions, listeners: ServerListeners) {
    this.#options = options;
    const path = options.server === undefined ? 'mcp' : `servers/${encodeURIComponent(options.server)}/mcp`;
    this.#endpoint = proxyEndpoint(options.proxyUrl, path).href;
    this.#peer = new Peer((message) => this.#sendOwn(message), listeners);
  }

  get session(): SessionInfo {
    return { id: this.#sessionId, protocolVersion: this.#protocolVersion };
  }

  resetSession(): void {
    void this.#endSession();
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
  }

  request(message: JsonRpcRequest, { signal }: SendOptions): Promise<JsonRpcResponse> {
    return this.#peer.call(message, signal, () => this.#exchange(message, signal));
  }

  async notify(message: JsonRpcNotification, { signal }: SendOptions): Promise<void> {
    const response = await this.#fetch('POST', signal, message);
    response.body?.cancel().catch(() => {});
    // Spec: after initialization the client may open a GET stream for server-initiated messages.
    if (message.method === 'notifications/initialized') this.#openStandalone();
  }

  async close(): Promise<void> {
    this.#lifetime.abort(new MCPProxyError('closed', 'The client was closed.'));
    this.#peer.failAll(this.#lifetime.signal.reason);
    await this.#endSession();
  }

  /** POSTs a request and reads its answer until the response arrived, resuming a broken stream. */
  async #exchange(message: JsonRpcRequest, signal: AbortSignal): Promise<void> {
    const response = await this.#fetch('POST', signal, message);
    if (message.method === 'initialize') {
      this.#sessionId = response.headers.get('mcp-session-id') ?? undefined;
    }
    const parser = new EventStreamParser(MAX_EVENT_CHARS);
    let broken = await this.#read(response, signal, parser);
    for (let attempt = 0; this.#peer.waiting(message.id) && attempt < MAX_RESUMPTIONS; attempt++) {
      const from = parser.lastEventId;
      if (from === undefined) break;
      await sleep(parser.retry ?? 0, signal);
      const resumed = await this.#fetch('GET', signal, undefined, from);
      broken = await this.#read(resumed, signal, parser);
    }
    if (!this.#peer.waiting(message.id)) return;
    if (broken) throw broken;
    throw new MCPProxyError(
      'invalid_response',
      `The proxy's answer to ${message.method} ended before its response.`,
    );
  }

  /**
   * Feeds an answer (JSON or an event stream) to the peer. Returns the network error that broke
   * a stream (so the caller may resume), or undefined when it ended normally.
   */
  async #read(
    response: FetchResponse,
    signal: AbortSignal,
    parser: EventStreamParser,
  ): Promise<NetworkError | undefined> {
    const type = (response.headers.get('content-type') ?? '').toLowerCase();
    if (response.status === 202) return undefined;
    if (!type.startsWith('text/event-stream')) {
      const text = await response.text();
      if (text !== '') this.#peer.receive(parseJson(text));
      return undefined;
    }
    if (!response.body) return undefined;
    try {
      for await (const event of readEventStream(response.body, parser)) {
        if (event.event !== 'message' || event.data === '') continue;
        const parsed = parseJson(event.data);
        if (parsed !== undefined) this.#peer.receive(parsed);
      }
      return undefined;
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (error instanceof RangeError) throw new MCPProxyError('invalid_response', error.message);
      return new NetworkError('network_error', `The proxy's event stream broke (${String(error)}).`, {
        cause: error,
      });
    }
  }

  /** Keeps the GET stream for server-initiated messages open while the session lasts. */
  #openStandalone(): void {
    this.#standalone?.abort();
    const controller = new AbortController();
    this.#standalone = controller;
    const { signal } = controller;
    const parser = new EventStreamParser(MAX_EVENT_CHARS);
    void (async () => {
      for (let failures = 0; !signal.aborted && failures < MAX_STREAM_FAILURES; ) {
        try {
          const response = await this.#fetch('GET', signal, undefined, parser.lastEventId, 405);
          // 405: the server offers no such stream; everything arrives on the POST answers.
          if (response.status === 405) return;
          const broken = await this.#read(response, signal, parser);
          failures = broken ? failures + 1 : 0;
        } catch (error) {
          // A refusal (session gone, a stream already open) will not get better by retrying.
          if (signal.aborted || (error instanceof MCPProxyError && (error.status ?? 500) < 500)) return;
          failures++;
        }
        await sleep(parser.retry ?? DEFAULT_RETRY_MS, signal);
      }
    })();
  }

  /** Stops the GET stream and ends the session at the proxy (DELETE), best effort. */
  async #endSession(): Promise<void> {
    this.#standalone?.abort();
    this.#standalone = undefined;
    const sessionId = this.#sessionId;
    this.#sessionId = undefined;
    this.#protocolVersion = undefined;
    if (sessionId === undefined) return;
    const deadline = callSignal([], OWN_MESSAGE_TIMEOUT_MS);
    try {
      const response = await this.#fetch('DELETE', deadline.signal, undefined, undefined, 405, sessionId);
      response.body?.cancel().catch(() => {});
    } catch {
      // The session ends anyway when the server or the proxy expires it.
    } finally {
      deadline.dispose();
    }
  }

  /** Sends the transport's own messages: answers to server requests, cancellations. */
  async #sendOwn(message: JsonRpcMessage): Promise<void> {
    const deadline = callSignal([this.#lifetime.signal], OWN_MESSAGE_TIMEOUT_MS);
    try {
      const response = await this.#fetch('POST', deadline.signal, message);
      response.body?.cancel().catch(() => {});
    } finally {
      deadline.dispose();
    }
  }

  /** One HTTP exchange with the endpoint; a refusal becomes the matching error. */
  async #fetch(
    method: FetchInit['method'],
    signal: AbortSignal,
    message?: JsonRpcMessage,
    lastEventId?: string,
    allowStatus?: number,
    sessionId = this.#sessionId,
  ): Promise<FetchResponse> {
    const options = this.#options;
    const headers: Record<string, string> = {
      accept: method === 'POST' ? 'application/json, text/event-stream' : 'text/event-stream',
      'x-proxy-token': options.proxyToken,
    };
    if (message) headers['content-type'] = 'application/json';
    if (options.mcpServerUrl !== undefined) headers['x-mcp-server-url'] = options.mcpServerUrl;
    if (options.mcpToken !== undefined) headers['x-mcp-token'] = options.mcpToken;
    if (options.upstreamTransport !== undefined) headers['x-mcp-transport'] = options.upstreamTransport;
    if (sessionId !== undefined) headers['mcp-session-id'] = sessionId;
    if (this.#protocolVersion !== undefined) headers['mcp-protocol-version'] = this.#protocolVersion;
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    const init: FetchInit = { method, headers, signal };
    if (message) init.body = JSON.stringify(message);

    let response: FetchResponse;
    try {
      response = await options.fetch(this.#endpoint, init);
    } catch (error) {
      throw unreachable(this.#endpoint, signal, error);
    }
    if (response.ok || response.status === allowStatus) return response;
    const text = await response.text().catch(() => '');
    throw refusal(response, text, sessionId !== undefined);
  }
}
