/**
 * @module eras/modern-facade
 * A modern (2026-07-28) client in front of a session-era server. The facade holds the upstream
 * session: it runs `initialize` with the capabilities and identity of the first request's
 * `_meta` (callers pool facades so that only requests with the same ones share a session),
 * answers `server/discover` from the `InitializeResult`, strips the modern `_meta` from every
 * request, and turns a server-to-client request (sampling, elicitation, roots) that arrives
 * while a call runs into an `InputRequiredResult`: the call stays open upstream, and the
 * client's retry, carrying the proxy's `requestState` handle and `inputResponses`, answers the
 * server's requests and waits on for the call's result. `subscriptions/listen` is served from
 * the session's notifications and `resources/subscribe`.
 */
import { ProxyError, protocolError, toJsonRpcError } from '../errors.ts';
import {
  asObject,
  cancelledRequestId,
  isRequest,
  isResponse,
  type JsonObject,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../jsonrpc.ts';
import { cancelUpstream, RunningRequests } from '../upstream/cancellation.ts';
import { Correlator } from '../upstream/correlator.ts';
import { REFUSAL_DEFAULTS, ServerRequestRefusals } from '../upstream/server-request-refusals.ts';
import { type SendOptions, TransportCallbacks, type UpstreamTransport } from '../upstream/transport.ts';
import { LATEST_SESSION_VERSION, META, MODERN_VERSION, metaOf, withoutModernMeta } from './classify.ts';
import {
  type Call,
  CallTable,
  isHandle,
  MAX_WAITING_BYTES_PER_CALL,
  MAX_WAITING_PER_CALL,
} from './input-rounds.ts';
import { type Listen, ListenTable, urisOf } from './listens.ts';

/** What the facade wraps and how long it holds a call waiting for the client's input. */
export interface ModernEraFacadeOptions {
  /** A started transport to the session-era server. */
  readonly inner: UpstreamTransport;
  /** How long a call waits for the client's retry after an `InputRequiredResult`. */
  readonly inputDeadlineMs: number;
  /** How long the `initialize` handshake may take. */
  readonly timeoutMs: number;
  /** This instance's tag in `requestState` handles (issue 19: retries elsewhere are relayed). */
  readonly handleTag?: string | undefined;
}

/** Speaks 2026-07-28 inward and the session era outward. */
export class ModernEraFacade extends TransportCallbacks implements UpstreamTransport {
  readonly #inner: UpstreamTransport;
  readonly #options: ModernEraFacadeOptions;
  #initialized: Promise<JsonObject> | undefined;
  #logLevel: string | undefined;
  readonly #calls: CallTable;
  /** The facade's own requests waiting: their response, or the failure that lost it. */
  readonly #internal = new Correlator();
  readonly #listens = new ListenTable();
  /** Client requests still waiting for the session to open: a cancellation meanwhile aborts one. */
  readonly #preparing = new RunningRequests();
  #seq = 0;
  /** Aborted when the upstream connection ends: refusals still in flight end with it. */
  readonly #done = new AbortController();
  /** Server requests the facade answers with an error itself: a few at once, the rest dropped. */
  readonly #refusals: ServerRequestRefusals;

  constructor(options: ModernEraFacadeOptions) {
    super();
    this.#options = options;
    this.#inner = options.inner;
    this.#calls = new CallTable(options.handleTag);
    this.#refusals = new ServerRequestRefusals(
      (reply, signal) => this.#inner.send(reply, { signal }),
      this.#done.signal,
      { ...REFUSAL_DEFAULTS, maxRefused: Number.POSITIVE_INFINITY },
    );
    this.#inner.onmessage = (message) => this.#fromUpstream(message);
    this.#inner.onerror = (error) => {
      // The facade's own requests (initialize above all) may have lost their answer to what
      // failed: they fail now, with the cause, rather than at their timeout (issue 14, #1).
      this.#internal.failAll(error);
      this.onerror?.(error);
    };
    this.#inner.onclose = () => {
      this.#done.abort();
      for (const call of this.#calls.all()) this.#calls.forget(call);
      this.onclose?.();
    };
  }

  get sessionId(): string | undefined {
    return undefined;
  }

  get protocolVersion(): string | undefined {
    return MODERN_VERSION;
  }

  async start(): Promise<void> {}

  pause(): void {
    this.#inner.pause();
  }

  resume(): void {
    this.#inner.resume();
  }

  async close(): Promise<void> {
    for (const call of this.#calls.all()) clearTimeout(call.deadline);
    await this.#inner.close();
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    if (isResponse(message)) return; // modern clients answer through inputResponses
    if (!isRequest(message)) {
      const cancelled = cancelledRequestId(message);
      if (cancelled !== undefined) await this.#cancel(cancelled);
      return;
    }
    const preparing = this.#preparing.start(message.id);
    try {
      await this.#dispatch(message, options.signal, preparing.signal);
    } finally {
      this.#preparing.finish(message.id, preparing);
    }
  }

  /** True while calls run, wait for the client's input, or feed listen streams. */
  get busy(): boolean {
    return this.#calls.size > 0 || this.#listens.size > 0;
  }

  async #dispatch(
    message: JsonRpcRequest,
    signal: AbortSignal | undefined,
    cancelled: AbortSignal,
  ): Promise<void> {
    // Cancelled while the session was still opening: nothing goes upstream.
    const gone = () => signal?.aborted === true || cancelled.aborted;
    const initialized = await this.#initialize(message);
    if (gone()) return;
    const meta = metaOf(message);
    switch (message.method) {
      case 'server/discover':
        return this.#answer(message.id, {
          resultType: 'complete',
          supportedVersions: [MODERN_VERSION],
          ttlMs: 0,
          cacheScope: 'private',
          capabilities: asObject(initialized.capabilities),
          ...(typeof initialized.instructions === 'string' ? { instructions: initialized.instructions } : {}),
          _meta: { [META.serverInfo]: initialized.serverInfo },
        });
      case 'subscriptions/listen':
        return this.#listen(message, initialized);
    }
    const level = meta[META.logLevel];
    if (typeof level === 'string' && level !== this.#logLevel && asObject(initialized.capabilities).logging) {
      this.#logLevel = level;
      await this.#request('logging/setLevel', { level }).catch(() => {});
      if (gone()) return;
    }
    const state = message.params?.requestState;
    if (isHandle(state)) return this.#resume(message, state);
    return this.#start(message);
  }

  /** Opens the upstream session on first use, with the first request's client envelope. */
  #initialize(message: JsonRpcRequest): Promise<JsonObject> {
    if (this.#initialized) return this.#initialized;
    const meta = metaOf(message);
    const opening = (async () => {
      const result = await this.#request('initialize', {
        protocolVersion: LATEST_SESSION_VERSION,
        capabilities: asObject(meta[META.clientCapabilities]),
        clientInfo: meta[META.clientInfo] ?? { name: 'mcp-proxy', version: '1' },
      });
      await this.#inner.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      return result;
    })();
    this.#initialized = opening;
    opening.catch(() => {
      if (this.#initialized === opening) this.#initialized = undefined;
    });
    return opening;
  }

  /** A request of the facade's own; resolves with the result or throws the server's error. */
  async #request(method: string, params: JsonObject): Promise<JsonObject> {
    const id = `mcp-proxy-${++this.#seq}`;
    const expected = this.#internal.expect(id, { timeoutMs: this.#options.timeoutMs });
    // An answer that does not come in time reads as the server's refusal, as any other.
    const timedOut = (error: unknown) =>
      ProxyError.is(error) && error.code === 'upstream_timeout'
        ? toJsonRpcError(error, id)
        : Promise.reject(error);
    try {
      await this.#inner.send({ jsonrpc: '2.0', id, method, params });
      const response = await expected.answer.catch(timedOut);
      if ('error' in response) {
        throw new ProxyError(
          'upstream_protocol_error',
          `The MCP server refused ${method}: ${response.error.message}`,
        );
      }
      return response.result;
    } finally {
      this.#internal.fail(id, new ProxyError('upstream_unreachable'));
    }
  }

  #start(message: JsonRpcRequest): void {
    const call = this.#calls.open(message);
    const upstream = { ...withoutModernMeta(message), id: call.upstreamId };
    // Not awaited: a call may outlive the client request that started it (input rounds).
    this.#inner.send(upstream).catch((error: unknown) => {
      if (!this.#calls.running(call)) return;
      const failure = toJsonRpcError(error, call.upstreamId);
      // While the client owes input the failure waits for its retry, which then gets it.
      if (call.owner === undefined) call.final = failure;
      else this.#finish(call, failure);
    });
  }

  /** The client's retry: answer the server's requests, then wait on for the call. */
  async #resume(message: JsonRpcRequest, handle: string): Promise<void> {
    const call = this.#calls.byHandle(handle);
    if (!call) {
      this.#deliver(
        protocolError(
          message.id,
          'invalid_params',
          'Unknown or expired requestState: the proxy no longer holds this call; send the request again without it.',
        ),
      );
      return;
    }
    this.#calls.own(call, message.id);
    const responses = asObject(message.params?.inputResponses);
    for (const asked of this.#calls.answered(call)) {
      const answer = responses[asked.key];
      await this.#inner
        .send(
          answer === undefined
            ? protocolError(asked.id, 'internal_error', 'The client gave no answer.')
            : { jsonrpc: '2.0', id: asked.id, result: asObject(answer) },
        )
        .catch(() => {});
    }
    if (call.final) this.#finish(call, call.final);
    else if (call.waiting.length > 0) this.#flush(call);
  }

  async #cancel(requestId: RequestId): Promise<void> {
    const listen = this.#listens.remove(requestId);
    if (listen) {
      await this.#unsubscribeUnused(listen);
      return;
    }
    const call = this.#calls.byClient(requestId);
    if (!call) {
      this.#preparing.cancel(requestId);
      return;
    }
    await this.#drop(call, 'cancelled by the client');
  }

  /** Forgets a call and tells the server it is cancelled (under the id the server knows: the proxy's). */
  #drop(call: Call, reason: string): Promise<void> {
    this.#calls.forget(call);
    return cancelUpstream(this.#inner, call.upstreamId, reason);
  }

  #fromUpstream(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      if (message.id === null) return;
      if (this.#internal.settle(message.id, message)) return;
      const call = this.#calls.byUpstreamId(message.id);
      if (!call) return;
      if (call.owner === undefined) call.final = message;
      else this.#finish(call, message);
      return;
    }
    if (isRequest(message)) this.#serverRequest(message);
    else this.#notification(message);
  }

  /** A server-to-client request: input for the call it belongs to. */
  #serverRequest(message: JsonRpcRequest): void {
    if (message.method === 'ping') {
      this.#inner.send({ jsonrpc: '2.0', id: message.id, result: {} }).catch(() => {});
      return;
    }
    const call = this.#calls.asking(message);
    if (!call) {
      this.#refusals.refuse(
        message,
        `A ${MODERN_VERSION} client can be asked for "${message.method}" only while one of its tools/call, prompts/get or resources/read requests runs.`,
      );
      return;
    }
    if (!this.#calls.wait(call, message)) {
      this.#refusals.refuse(
        message,
        `The client already has as many requests for input waiting as the proxy keeps (${MAX_WAITING_PER_CALL}, ${MAX_WAITING_BYTES_PER_CALL} bytes): ask again once it answered.`,
      );
      return;
    }
    this.#flush(call);
  }

  /** Shows the call's waiting server requests to its owner as an InputRequiredResult. */
  #flush(call: Call): void {
    if (call.flushing) return;
    call.flushing = true;
    // Requests sent together (several elicitations at once) go out in one result.
    setImmediate(() => {
      call.flushing = false;
      if (call.owner === undefined || call.waiting.length === 0 || !this.#calls.running(call)) return;
      const owner = call.owner;
      call.asked = call.waiting.splice(0);
      const handle = this.#calls.disown(call);
      call.deadline = setTimeout(() => this.#abandon(call), this.#options.inputDeadlineMs);
      call.deadline.unref();
      this.#answer(owner, {
        resultType: 'input_required',
        inputRequests: Object.fromEntries(
          call.asked.map((asked) => [
            asked.key,
            { method: asked.method, ...(asked.params ? { params: asked.params } : {}) },
          ]),
        ),
        requestState: handle,
      });
    });
  }

  /** The client never came back: refuse the server's requests and cancel the call. */
  #abandon(call: Call): void {
    for (const asked of call.asked) {
      this.#inner
        .send(protocolError(asked.id, 'internal_error', 'The client did not answer in time.'))
        .catch(() => {});
    }
    void this.#drop(call, 'input not provided in time');
  }

  #finish(call: Call, response: JsonRpcResponse): void {
    const owner = call.owner;
    this.#calls.forget(call);
    if (owner === undefined) return;
    if ('result' in response) {
      // Cacheable results must carry cache hints in 2026-07-28; a held session's answers are the
      // caller's own and may change at any time: private, not to be reused.
      const hints = CACHEABLE.has(call.method) ? { ttlMs: 0, cacheScope: 'private' } : {};
      this.#answer(owner, { ...response.result, resultType: 'complete', ...hints });
    } else this.#deliver({ ...response, id: owner });
  }

  #notification(message: JsonRpcNotification): void {
    const stamped = this.#listens.stamped(message);
    if (stamped.length === 0) this.#deliver(message);
    for (const copy of stamped) this.#deliver(copy);
  }

  /** `subscriptions/listen`: acknowledge what the server can honour, then stream matching notifications. */
  async #listen(message: JsonRpcRequest, initialized: JsonObject): Promise<void> {
    const filter = ListenTable.filterFor(
      asObject(message.params?.notifications),
      asObject(initialized.capabilities),
    );
    for (const uri of urisOf(filter)) await this.#request('resources/subscribe', { uri }).catch(() => {});
    this.#listens.add({ id: message.id, filter });
    this.#deliver({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: filter, _meta: { [META.subscriptionId]: message.id } },
    });
  }

  async #unsubscribeUnused(ended: Listen): Promise<void> {
    const still = this.#listens.watched();
    for (const uri of urisOf(ended.filter)) {
      if (!still.has(uri)) await this.#request('resources/unsubscribe', { uri }).catch(() => {});
    }
  }

  #answer(id: RequestId, result: JsonObject): void {
    this.#deliver({ jsonrpc: '2.0', id, result });
  }

  #deliver(message: JsonRpcMessage): void {
    this.onmessage?.(message);
  }
}

/** Methods whose modern results are cacheable (they must carry `ttlMs` and `cacheScope`). */
const CACHEABLE = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);
