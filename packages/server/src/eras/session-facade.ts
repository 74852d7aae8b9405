/**
 * @module eras/session-facade
 * A session-era (2025) client in front of a modern-only server. The client sees an ordinary
 * session: `initialize` is answered by the proxy from the server's `server/discover`; every
 * later request goes up with the modern `_meta` (version, the client's info and capabilities,
 * log level) and, through the inner Streamable HTTP transport, the headers derived from it.
 * An `InputRequiredResult` becomes server-to-client requests on the client's stream; their
 * answers go back as `inputResponses` with the server's `requestState`, and the request is
 * retried until it completes. The session-era GET stream and `resources/subscribe` are fed by one
 * upstream `subscriptions/listen`.
 */
import { linkAbort } from '../abort.ts';
import { ProxyError, protocolError, relayedError, toJsonRpcError } from '../errors.ts';
import type { JsonObject, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse, RequestId } from '../jsonrpc.ts';
import { asObject, cancelledRequestId, isRequest, isResponse } from '../jsonrpc.ts';
import { RunningRequests, requestCancelled } from '../upstream/cancellation.ts';
import { type AbandonError, Correlator } from '../upstream/correlator.ts';
import { type SendOptions, TransportCallbacks, type UpstreamTransport } from '../upstream/transport.ts';
import { META, MODERN_VERSION, negotiatedSessionVersion, sessionResult, withMeta } from './classify.ts';

/** Rounds of input a request may need before the proxy gives up on it. */
const MAX_INPUT_ROUNDS = 8;
/** Wait before reopening a listen stream that ended. */
const LISTEN_RETRY_MS = 1_000;
/** Longest wait between listen attempts that keep failing. */
const LISTEN_RETRY_MAX_MS = 60_000;

/** What the facade wraps. */
export interface SessionEraFacadeOptions {
  /** A transport to the modern server (sessionless Streamable HTTP, or a stdio pair). */
  readonly inner: UpstreamTransport;
}

/** A wait the caller's signal ended fails with the signal's reason. */
const cancelled: AbandonError = (_timedOut, _timeoutMs, reason) => reason ?? requestCancelled();

/** Speaks the session era inward and 2026-07-28 outward. */
export class SessionEraFacade extends TransportCallbacks implements UpstreamTransport {
  readonly #inner: UpstreamTransport;
  #version: string | undefined;
  #clientInfo: unknown = { name: 'mcp-proxy-client', version: '1' };
  #capabilities: unknown = {};
  #logLevel: string | undefined;
  #serverCapabilities: JsonObject = {};
  /** Responses the facade itself waits for (its own requests, and the client's, to retry them). */
  readonly #waiters = new Correlator(cancelled);
  /** Answers the client owes for server requests the facade made from `inputRequests`. */
  readonly #inputs = new Correlator(cancelled);
  readonly #subscriptions = new Set<string>();
  /** Client requests still running: the client's `notifications/cancelled` aborts them. */
  readonly #running = new RunningRequests();
  #listen: { id: string; controller: AbortController; acknowledged: boolean } | undefined;
  /** The server answered a listen with an error: it will not be asked again this session. */
  #listenRefused = false;
  #listenDelay = LISTEN_RETRY_MS;
  #listenWanted = false;
  #seq = 0;
  #closed = false;

  constructor(options: SessionEraFacadeOptions) {
    super();
    this.#inner = options.inner;
    this.#inner.onmessage = (message) => this.#fromUpstream(message);
    this.#inner.onerror = (error) => {
      // The facade's own requests (server/discover above all) may have lost their answer to
      // what failed: they fail now, with the cause, rather than never (issue 14, #1).
      this.#waiters.failAll(error);
      this.onerror?.(error);
    };
    this.#inner.onclose = () => {
      this.#closed = true;
      this.#listen?.controller.abort();
      this.onclose?.();
    };
  }

  get sessionId(): string | undefined {
    return undefined;
  }

  get protocolVersion(): string | undefined {
    return this.#version;
  }

  async start(): Promise<void> {
    await this.#inner.start();
  }

  pause(): void {
    this.#inner.pause();
  }

  resume(): void {
    this.#inner.resume();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listen?.controller.abort();
    this.#running.abortAll();
    const ended = new ProxyError('upstream_unreachable', 'The session ended.');
    this.#waiters.failAll(ended);
    this.#inputs.failAll(ended);
    await this.#inner.close();
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    if (isResponse(message)) {
      // The client's answer to a request made from an InputRequiredResult.
      if (message.id === null) return;
      this.#inputs.settle(message.id, message);
      return;
    }
    if (!isRequest(message)) {
      // Modern servers take no client notifications: cancellation is closing the request's
      // stream (done here), capabilities travel with each request.
      const cancelled = cancelledRequestId(message);
      if (cancelled !== undefined) this.#running.cancel(cancelled);
      if (message.method === 'notifications/initialized') this.#startListening();
      return;
    }
    switch (message.method) {
      case 'initialize':
        return this.#initialize(message, options.signal);
      case 'ping':
        // 2026-07-28 has no ping: the proxy answers for a session that is up.
        return this.#answer(message.id, {});
      case 'logging/setLevel':
        this.#logLevel = typeof message.params?.level === 'string' ? message.params.level : undefined;
        return this.#answer(message.id, {});
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = message.params?.uri;
        if (typeof uri === 'string') {
          if (message.method === 'resources/subscribe') this.#subscriptions.add(uri);
          else this.#subscriptions.delete(uri);
          this.#restartListening();
        }
        return this.#answer(message.id, {});
      }
      default:
        this.#start(message, options.signal);
        return;
    }
  }

  /**
   * Runs a client request in the background: `send()` returns at once, as on a stream-pair
   * transport. A call may need the client to answer server requests (from an
   * `InputRequiredResult`) before it completes, and the client's stream only opens once
   * `send()` has returned; waiting here would deadlock it. The answer, or an error, comes
   * through `onmessage`; the caller's signal or the client's `notifications/cancelled` aborts it.
   */
  #start(message: JsonRpcRequest, signal: AbortSignal | undefined): void {
    const controller = this.#running.start(message.id);
    const link = linkAbort([signal, controller.signal]);
    this.#call(message, link.signal)
      .catch((error: unknown) => {
        if (link.signal.aborted || this.#closed) return; // cancelled: nobody waits for an answer
        this.#deliver(toJsonRpcError(error, message.id));
      })
      .finally(() => {
        link.dispose();
        this.#running.finish(message.id, controller);
      });
  }

  async #initialize(message: JsonRpcRequest, signal: AbortSignal | undefined): Promise<void> {
    const params = message.params ?? {};
    if (params.clientInfo !== undefined) this.#clientInfo = params.clientInfo;
    if (params.capabilities !== undefined) this.#capabilities = params.capabilities;
    this.#version = negotiatedSessionVersion(params.protocolVersion);
    const discover = await this.#requestUpstream(
      this.#modern({ jsonrpc: '2.0', id: this.#internalId('discover'), method: 'server/discover' }),
      signal,
    );
    if ('error' in discover) {
      this.#deliver(
        relayedError(
          message.id,
          discover.error,
          `The MCP server speaks only MCP ${MODERN_VERSION}, and its server/discover failed: ${discover.error.message}`,
        ),
      );
      return;
    }
    const result = discover.result;
    this.#serverCapabilities = asObject(result.capabilities);
    const serverInfo = asObject(result._meta)[META.serverInfo] ?? result.serverInfo;
    this.#answer(message.id, {
      protocolVersion: this.#version,
      capabilities: this.#serverCapabilities,
      serverInfo: serverInfo ?? { name: 'unknown', version: '' },
      ...(typeof result.instructions === 'string' ? { instructions: result.instructions } : {}),
    });
  }

  /**
   * One client request, retried with the client's answers while the server asks for input.
   */
  async #call(message: JsonRpcRequest, signal: AbortSignal | undefined): Promise<void> {
    const first = this.#modern(message);
    let request = first;
    for (let round = 0; ; round++) {
      const response = await this.#requestUpstream(request, signal);
      const result = 'result' in response ? response.result : undefined;
      if (result?.resultType !== 'input_required') {
        this.#deliver(
          result
            ? { ...response, id: message.id, result: sessionResult(result) }
            : { ...response, id: message.id },
        );
        return;
      }
      if (round >= MAX_INPUT_ROUNDS) {
        this.#fail(message.id, `The MCP server asked for input more than ${MAX_INPUT_ROUNDS} times.`);
        return;
      }
      const answers = await this.#askClient(message.id, asObject(result.inputRequests), signal);
      if ('refusal' in answers) {
        this.#deliver(answers.refusal);
        return;
      }
      request = {
        ...first,
        // A retry is a new request: the spec wants a fresh id for it.
        id: this.#internalId('retry'),
        params: {
          ...first.params,
          inputResponses: answers.responses,
          ...(result.requestState === undefined ? {} : { requestState: result.requestState }),
        },
      };
    }
  }

  /** Turns each input request into a server-to-client request and collects the answers. */
  async #askClient(
    id: RequestId,
    requests: JsonObject,
    signal: AbortSignal | undefined,
  ): Promise<{ responses: JsonObject } | { refusal: JsonRpcResponse }> {
    const entries = Object.entries(requests).map(([key, value]) => [key, asObject(value)] as const);
    // Checked before any is shown to the client, so a bad one leaves no question half asked.
    if (entries.some(([, asked]) => typeof asked.method !== 'string')) {
      throw new ProxyError(
        'upstream_protocol_error',
        'The MCP server asked for input without a method name.',
      );
    }
    const pending = entries.map(async ([key, asked]) => {
      const inputId = `mcpp-input-${++this.#seq}`;
      const answer = this.#inputs.expect(inputId, { signal }).answer;
      this.#deliver({
        jsonrpc: '2.0',
        id: inputId,
        method: asked.method as string,
        ...(asked.params === undefined ? {} : { params: asObject(asked.params) }),
      });
      return [key, asked.method as string, await answer] as const;
    });
    const responses: JsonObject = {};
    for (const [key, method, answer] of await Promise.all(pending)) {
      if ('error' in answer) {
        // The client's code, not its data: that was for the request it refused.
        const text = `The client could not answer the server's ${method} request: ${describe(answer.error.message)}`;
        return { refusal: relayedError(id, { code: answer.error.code, message: text }) };
      }
      responses[key] = answer.result;
    }
    return { responses };
  }

  /** Sends a modern request and waits for its response. */
  async #requestUpstream(request: JsonRpcRequest, signal: AbortSignal | undefined): Promise<JsonRpcResponse> {
    const expected = this.#waiters.expect(request.id, { signal });
    try {
      await this.#inner.send(request, signal ? { signal } : {});
    } catch (error) {
      this.#waiters.fail(request.id, error);
      throw error;
    }
    return expected.answer;
  }

  #fromUpstream(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      if (message.id === null) return;
      if (this.#listen && message.id === this.#listen.id && 'error' in message) this.#listenRefused = true;
      this.#waiters.settle(message.id, message);
      return;
    }
    if (isRequest(message)) return; // a modern server sends no requests
    const meta = asObject(message.params?._meta);
    const subscription = meta[META.subscriptionId];
    if (subscription !== undefined) {
      if (!this.#listen || subscription !== this.#listen.id) return;
      if (message.method === 'notifications/subscriptions/acknowledged') {
        this.#listen.acknowledged = true;
        return;
      }
      const { [META.subscriptionId]: _, ...rest } = meta;
      const params: JsonObject = { ...message.params };
      if (Object.keys(rest).length > 0) params._meta = rest;
      else delete params._meta;
      this.#deliver({ ...message, params });
      return;
    }
    this.#deliver(message);
  }

  /** The request with the modern envelope in `_meta`. */
  #modern(message: JsonRpcRequest): JsonRpcRequest {
    return withMeta(message, {
      [META.protocolVersion]: MODERN_VERSION,
      [META.clientInfo]: this.#clientInfo,
      [META.clientCapabilities]: this.#capabilities,
      ...(this.#logLevel === undefined ? {} : { [META.logLevel]: this.#logLevel }),
    });
  }

  /** Opens the upstream `subscriptions/listen` that feeds change notifications, if any apply. */
  #startListening(): void {
    this.#listenWanted = true;
    this.#restartListening();
  }

  #restartListening(): void {
    this.#listen?.controller.abort();
    this.#listen = undefined;
    if (this.#closed || !this.#listenWanted) return;
    const caps = this.#serverCapabilities;
    const listChanged = (name: string) => asObject(caps[name]).listChanged === true;
    const filter: JsonObject = {};
    if (listChanged('tools')) filter.toolsListChanged = true;
    if (listChanged('prompts')) filter.promptsListChanged = true;
    if (listChanged('resources')) filter.resourcesListChanged = true;
    if (this.#subscriptions.size > 0) filter.resourceSubscriptions = [...this.#subscriptions];
    if (Object.keys(filter).length === 0) return;
    const listen = { id: this.#internalId('listen'), controller: new AbortController(), acknowledged: false };
    this.#listen = listen;
    const request = this.#modern({
      jsonrpc: '2.0',
      id: listen.id,
      method: 'subscriptions/listen',
      params: { notifications: filter },
    });
    this.#inner
      .send(request, { signal: listen.controller.signal, streaming: true })
      .catch(() => {})
      .finally(() => {
        // The server ended the stream (or it failed): listen again unless replaced, closed or
        // refused, waiting longer after each stream that never got acknowledged.
        if (this.#listen !== listen || listen.controller.signal.aborted || this.#listenRefused) return;
        this.#listenDelay = listen.acknowledged
          ? LISTEN_RETRY_MS
          : Math.min(this.#listenDelay * 2, LISTEN_RETRY_MAX_MS);
        setTimeout(() => {
          if (this.#listen === listen) this.#restartListening();
        }, this.#listenDelay).unref();
      });
  }

  #internalId(purpose: string): string {
    return `mcp-proxy-${purpose}-${++this.#seq}`;
  }

  #answer(id: RequestId, result: JsonObject): void {
    this.#deliver({ jsonrpc: '2.0', id, result });
  }

  #fail(id: RequestId, message: string): void {
    this.#deliver(protocolError(id, 'internal_error', message));
  }

  #deliver(message: JsonRpcMessage): void {
    this.onmessage?.(message);
  }
}

/** A client's error message as text, whatever it sent (it is not checked like an upstream's). */
function describe(message: unknown): string {
  return typeof message === 'string' ? message : 'no message';
}
