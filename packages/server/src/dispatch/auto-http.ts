/**
 * @module dispatch/auto-http
 * An HTTP upstream whose transport is not known yet: the first message goes out as Streamable
 * HTTP; if the server refuses it the way the MCP spec's back-compat section describes (4xx),
 * the legacy HTTP+SSE transport is tried. The verdict is remembered per URL.
 */

import type { JsonRpcMessage } from '../jsonrpc.ts';
import type { BearerSource } from '../upstream/headers.ts';
import type { UpstreamHttp } from '../upstream/http.ts';
import type { ParamHeaderCatalog } from '../upstream/param-headers.ts';
import { SseTransport } from '../upstream/sse.ts';
import { StreamableHttpTransport } from '../upstream/streamable-http.ts';
import { type SendOptions, TransportCallbacks, type UpstreamTransport } from '../upstream/transport.ts';
import { answerOfFailure, invitesSse } from './answer-rules.ts';
import type { TransportVerdicts } from './transport-verdicts.ts';

/** How to reach an HTTP upstream of unknown transport. */
export interface AutoHttpOptions {
  readonly url: URL;
  readonly http: UpstreamHttp;
  readonly verdicts: TransportVerdicts;
  readonly bearerToken?: BearerSource | undefined;
  readonly handshakeTimeoutMs: number;
  readonly paramHeaders?: ParamHeaderCatalog | undefined;
}

/** Picks Streamable HTTP or legacy SSE on first use, then behaves as the one it picked. */
export class AutoHttpTransport extends TransportCallbacks implements UpstreamTransport {
  readonly #options: AutoHttpOptions;
  #inner: UpstreamTransport | undefined;
  #probing: UpstreamTransport | undefined;
  #closed = false;

  constructor(options: AutoHttpOptions) {
    super();
    this.#options = options;
  }

  get sessionId(): string | undefined {
    return this.#inner?.sessionId;
  }

  get protocolVersion(): string | undefined {
    return this.#inner?.protocolVersion;
  }

  async start(): Promise<void> {
    // What this instance, or another one through the shared store, learnt of the URL.
    const known = await this.#options.verdicts.recall(this.#options.url);
    if (known === 'sse') this.#inner = await this.#startSse();
    else if (known === 'streamable-http') this.#inner = this.#streamable();
  }

  pause(): void {
    this.#inner?.pause();
  }

  resume(): void {
    this.#inner?.resume();
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    if (this.#inner) return this.#inner.send(message, options);
    // While the first message is still deciding, others go the likely way (Streamable HTTP, and
    // the only way without a handshake): a legacy server only ever sees initialize first.
    if (this.#probing) return this.#probing.send(message, options);
    const streamable = this.#streamable();
    // Held from the start, so close() reaches a first call that is still running.
    this.#probing = streamable;
    try {
      await streamable.send(message, options);
      this.#inner ??= streamable;
      this.#options.verdicts.set(this.#options.url, 'streamable-http');
    } catch (error) {
      // The plan's rule (dispatch/answer-rules.ts), applied inside a held connection.
      const answer = answerOfFailure(error);
      if (answer === undefined || !invitesSse(answer) || this.#closed) throw error;
      let sse: UpstreamTransport;
      try {
        sse = await this.#startSse();
      } catch {
        throw error;
      }
      this.#inner = sse;
      this.#options.verdicts.set(this.#options.url, 'sse');
      await sse.send(message, options);
    } finally {
      this.#probing = undefined;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const open = this.#inner ?? this.#probing;
    if (open) await open.close();
    else this.onclose?.();
  }

  #streamable(): UpstreamTransport {
    const { url, http, bearerToken, paramHeaders } = this.#options;
    return this.#wire(new StreamableHttpTransport({ url, http, bearerToken, longLived: true, paramHeaders }));
  }

  async #startSse(): Promise<UpstreamTransport> {
    const { url, http, bearerToken, handshakeTimeoutMs } = this.#options;
    const sse = this.#wire(new SseTransport({ url, http, bearerToken, handshakeTimeoutMs }));
    await sse.start();
    return sse;
  }

  #wire(inner: UpstreamTransport): UpstreamTransport {
    inner.onmessage = (message) => this.onmessage?.(message);
    inner.onerror = (error) => this.onerror?.(error);
    inner.onclose = () => {
      this.#closed = true;
      this.onclose?.();
    };
    return inner;
  }
}
