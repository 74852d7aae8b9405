/**
 * @module upstream/modern-era-facade
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
import { randomBytes } from 'node:crypto';
import { ProxyError, protocolError, toJsonRpcError } from '../errors.ts';
import {
  isRequest,
  isResponse,
  type JsonObject,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
  requestKey,
} from '../jsonrpc.ts';
import { Correlator } from '../upstream/correlator.ts';
import { REFUSAL_DEFAULTS, ServerRequestRefusals } from '../upstream/server-request-refusals.ts';
import { type SendOptions, TransportCallbacks, type UpstreamTransport } from '../upstream/transport.ts';
import { LATEST_LEGACY_VERSION, META, MODERN_VERSION, metaOf, withoutModernMeta } from './classify.ts';

/**
 * Server requests one call may have waiting for the client's input, and their params' bytes
 * (JSON text). A session-era server asks for a few; one asking for thousands made the facade
 * keep them all until the client came back (issue 14 review, F6). Beyond, they are refused.
 */
const MAX_WAITING_PER_CALL = 16;
const MAX_WAITING_BYTES_PER_CALL = 1_048_576;

/** What the facade wraps and how long it holds a call waiting for the client's input. */
export interface ModernEraFacadeOptions {
  /** A started transport to the session-era server. */
  readonly inner: UpstreamTransport;
  /** How long a call waits for the client's retry after an `InputRequiredResult`. */
  readonly inputDeadlineMs: number;
  /** How long the `initialize` handshake may take. */
  readonly timeoutMs: number;
}

/** A server request waiting for the client's input. */
interface Asked {
  readonly key: string;
  readonly id: RequestId;
  readonly method: string;
  readonly params: JsonObject | undefined;
  /** Its params' JSON text length, counted in its call's `inputBytes`. */
  readonly bytes: number;
}

/** A client call running upstream. */
interface Call {
  readonly upstreamId: string;
  readonly method: string;
  /** The client request the next answer goes to; absent while the client owes input. */
  owner: RequestId | undefined;
  /** Server requests not yet shown to the client. */
  readonly waiting: Asked[];
  /** What `waiting` and `asked` hold, in bytes of their params' JSON text. */
  inputBytes: number;
  /** Server requests shown to the client, awaiting its retry. */
  asked: Asked[];
  /** The server's final response, kept while no client request owns the call. */
  final?: JsonRpcResponse;
  handle?: string;
  deadline?: NodeJS.Timeout;
  flushing?: boolean;
}

/** A `subscriptions/listen` the facade serves. */
interface Listen {
  readonly id: RequestId;
  readonly filter: JsonObject;
}

/** Speaks 2026-07-28 inward and the session era outward. */
export class ModernEraFacade extends TransportCallbacks implements UpstreamTransport {
  readonly #inner: UpstreamTransport;
  readonly #options: ModernEraFacadeOptions;
  #initialized: Promise<JsonObject> | undefined;
  #logLevel: string | undefined;
  readonly #calls = new Map<string, Call>();
  readonly #byClient = new Map<string, Call>();
  readonly #handles = new Map<string, Call>();
  /** The facade's own requests waiting: their response, or the failure that lost it. */
  readonly #internal = new Correlator();
  readonly #listens = new Map<string, Listen>();
  /** Client requests still waiting for the session to open, and those cancelled meanwhile. */
  readonly #preparing = new Set<string>();
  readonly #cancelledEarly = new Set<string>();
  #seq = 0;
  /** Aborted when the upstream connection ends: refusals still in flight end with it. */
  readonly #done = new AbortController();
  /** Server requests the facade answers with an error itself: a few at once, the rest dropped. */
  readonly #refusals: ServerRequestRefusals;

  constructor(options: ModernEraFacadeOptions) {
    super();
    this.#options = options;
    this.#inner = options.inner;
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
      for (const call of this.#calls.values()) this.#forget(call);
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
    for (const call of this.#calls.values()) clearTimeout(call.deadline);
    await this.#inner.close();
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    if (isResponse(message)) return; // modern clients answer through inputResponses
    if (!isRequest(message)) {
      if (message.method === 'notifications/cancelled') await this.#cancel(message.params?.requestId);
      return;
    }
    const key = requestKey(message.id);
    this.#preparing.add(key);
    try {
      await this.#dispatch(message, options.signal);
    } finally {
      this.#preparing.delete(key);
      this.#cancelledEarly.delete(key);
    }
  }

  /** True while calls run, wait for the client's input, or feed listen streams. */
  get busy(): boolean {
    return this.#calls.size > 0 || this.#listens.size > 0;
  }

  async #dispatch(message: JsonRpcRequest, signal: AbortSignal | undefined): Promise<void> {
    // Cancelled while the session was still opening: nothing goes upstream.
    const gone = () => signal?.aborted === true || this.#cancelledEarly.has(requestKey(message.id));
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
    if (typeof state === 'string' && state.startsWith(HANDLE_PREFIX)) return this.#resume(message, state);
    return this.#start(message);
  }

  /** Opens the upstream session on first use, with the first request's client envelope. */
  #initialize(message: JsonRpcRequest): Promise<JsonObject> {
    if (this.#initialized) return this.#initialized;
    const meta = metaOf(message);
    const opening = (async () => {
      const result = await this.#request('initialize', {
        protocolVersion: LATEST_LEGACY_VERSION,
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
    const call: Call = {
      upstreamId: `mcpp-call-${++this.#seq}`,
      method: message.method,
      owner: message.id,
      waiting: [],
      inputBytes: 0,
      asked: [],
    };
    this.#calls.set(call.upstreamId, call);
    this.#byClient.set(requestKey(message.id), call);
    const upstream = { ...withoutModernMeta(message), id: call.upstreamId };
    // Not awaited: a call may outlive the client request that started it (input rounds).
    this.#inner.send(upstream).catch((error: unknown) => {
      if (!this.#calls.has(call.upstreamId)) return;
      const failure = toJsonRpcError(error, call.upstreamId);
      // While the client owes input the failure waits for its retry, which then gets it.
      if (call.owner === undefined) call.final = failure;
      else this.#finish(call, failure);
    });
  }

  /** The client's retry: answer the server's requests, then wait on for the call. */
  async #resume(message: JsonRpcRequest, handle: string): Promise<void> {
    const call = this.#handles.get(handle);
    if (!call || call.owner !== undefined) {
      this.#deliver(
        protocolError(
          message.id,
          'invalid_params',
          'Unknown or expired requestState: the proxy no longer holds this call; send the request again without it.',
        ),
      );
      return;
    }
    clearTimeout(call.deadline);
    call.owner = message.id;
    this.#byClient.set(requestKey(message.id), call);
    const responses = asObject(message.params?.inputResponses);
    const answered = call.asked.splice(0);
    for (const asked of answered) call.inputBytes -= asked.bytes;
    for (const asked of answered) {
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

  async #cancel(requestId: unknown): Promise<void> {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    const key = requestKey(requestId);
    const listen = this.#listens.get(key);
    if (listen) {
      this.#listens.delete(key);
      await this.#unsubscribeUnused(listen);
      return;
    }
    const call = this.#byClient.get(key);
    if (!call) {
      if (this.#preparing.has(key)) this.#cancelledEarly.add(key);
      return;
    }
    this.#forget(call);
    await this.#inner
      .send({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: call.upstreamId, reason: 'cancelled by the client' },
      })
      .catch(() => {});
  }

  #fromUpstream(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      if (message.id === null) return;
      if (this.#internal.settle(message.id, message)) return;
      const call = this.#calls.get(String(message.id));
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
    // The most recent call that may ask for input is the one asking (a session-era server asks
    // while a call runs); 2026-07-28 allows input only for these requests and these methods.
    const call = INPUT_METHODS.has(message.method)
      ? [...this.#calls.values()].filter((c) => INPUT_CAPABLE.has(c.method)).at(-1)
      : undefined;
    if (!call) {
      this.#refusals.refuse(
        message,
        `A ${MODERN_VERSION} client can be asked for "${message.method}" only while one of its tools/call, prompts/get or resources/read requests runs.`,
      );
      return;
    }
    let bytes: number;
    try {
      bytes = message.params === undefined ? 0 : JSON.stringify(message.params).length;
    } catch {
      bytes = Number.POSITIVE_INFINITY; // Not representable: it could not be shown to the client.
    }
    if (
      call.waiting.length + call.asked.length >= MAX_WAITING_PER_CALL ||
      call.inputBytes + bytes > MAX_WAITING_BYTES_PER_CALL
    ) {
      this.#refusals.refuse(
        message,
        `The client already has as many requests for input waiting as the proxy keeps (${MAX_WAITING_PER_CALL}, ${MAX_WAITING_BYTES_PER_CALL} bytes): ask again once it answered.`,
      );
      return;
    }
    call.inputBytes += bytes;
    call.waiting.push({
      key: `input-${++this.#seq}`,
      id: message.id,
      method: message.method,
      params: message.params,
      bytes,
    });
    this.#flush(call);
  }

  /** Shows the call's waiting server requests to its owner as an InputRequiredResult. */
  #flush(call: Call): void {
    if (call.flushing) return;
    call.flushing = true;
    // Requests sent together (several elicitations at once) go out in one result.
    setImmediate(() => {
      call.flushing = false;
      if (call.owner === undefined || call.waiting.length === 0 || !this.#calls.has(call.upstreamId)) return;
      const owner = call.owner;
      call.asked = call.waiting.splice(0);
      // A fresh handle each round: a state echoed from an earlier round no longer resumes the call.
      if (call.handle) this.#handles.delete(call.handle);
      call.handle = `${HANDLE_PREFIX}${randomBytes(18).toString('base64url')}`;
      this.#handles.set(call.handle, call);
      this.#byClient.delete(requestKey(owner));
      call.owner = undefined;
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
        requestState: call.handle,
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
    this.#forget(call);
    this.#inner
      .send({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: call.upstreamId, reason: 'input not provided in time' },
      })
      .catch(() => {});
  }

  #finish(call: Call, response: JsonRpcResponse): void {
    const owner = call.owner;
    this.#forget(call);
    if (owner === undefined) return;
    if ('result' in response) {
      // Cacheable results must carry cache hints in 2026-07-28; a held session's answers are the
      // caller's own and may change at any time: private, not to be reused.
      const hints = CACHEABLE.has(call.method) ? { ttlMs: 0, cacheScope: 'private' } : {};
      this.#answer(owner, { ...response.result, resultType: 'complete', ...hints });
    } else this.#deliver({ ...response, id: owner });
  }

  #forget(call: Call): void {
    clearTimeout(call.deadline);
    this.#calls.delete(call.upstreamId);
    if (call.owner !== undefined) this.#byClient.delete(requestKey(call.owner));
    if (call.handle) this.#handles.delete(call.handle);
  }

  #notification(message: JsonRpcNotification): void {
    const matching = [...this.#listens.values()].filter((listen) => wants(listen.filter, message));
    if (matching.length === 0) {
      this.#deliver(message);
      return;
    }
    for (const listen of matching) {
      this.#deliver({
        ...message,
        params: {
          ...message.params,
          _meta: { ...asObject(message.params?._meta), [META.subscriptionId]: listen.id },
        },
      });
    }
  }

  /** `subscriptions/listen`: acknowledge what the server can honour, then stream matching notifications. */
  async #listen(message: JsonRpcRequest, initialized: JsonObject): Promise<void> {
    const asked = asObject(message.params?.notifications);
    const caps = asObject(initialized.capabilities);
    const listChanged = (name: string) => asObject(caps[name]).listChanged === true;
    const filter: JsonObject = {};
    if (asked.toolsListChanged === true && listChanged('tools')) filter.toolsListChanged = true;
    if (asked.promptsListChanged === true && listChanged('prompts')) filter.promptsListChanged = true;
    if (asked.resourcesListChanged === true && listChanged('resources')) filter.resourcesListChanged = true;
    const uris = Array.isArray(asked.resourceSubscriptions)
      ? asked.resourceSubscriptions.filter((uri): uri is string => typeof uri === 'string')
      : [];
    if (uris.length > 0 && asObject(caps.resources).subscribe === true) {
      filter.resourceSubscriptions = uris;
      for (const uri of uris) await this.#request('resources/subscribe', { uri }).catch(() => {});
    }
    this.#listens.set(requestKey(message.id), { id: message.id, filter });
    this.#deliver({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: filter, _meta: { [META.subscriptionId]: message.id } },
    });
  }

  async #unsubscribeUnused(ended: Listen): Promise<void> {
    const still = new Set([...this.#listens.values()].flatMap((listen) => urisOf(listen.filter)));
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

/** Server requests a modern client can be asked through an `InputRequiredResult`. */
const INPUT_METHODS = new Set(['elicitation/create', 'sampling/createMessage', 'roots/list']);
/** Client requests that may answer with an `InputRequiredResult` (2026-07-28). */
const INPUT_CAPABLE = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** Methods whose modern results are cacheable (they must carry `ttlMs` and `cacheScope`). */
const CACHEABLE = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** Prefix of the proxy's `requestState` handles. */
const HANDLE_PREFIX = 'mcpp-state.';

function wants(filter: JsonObject, message: JsonRpcNotification): boolean {
  switch (message.method) {
    case 'notifications/tools/list_changed':
      return filter.toolsListChanged === true;
    case 'notifications/prompts/list_changed':
      return filter.promptsListChanged === true;
    case 'notifications/resources/list_changed':
      return filter.resourcesListChanged === true;
    case 'notifications/resources/updated':
      // A uri that is not a string (an object whose toString is not a function throws in
      // String()) matches no subscription.
      return typeof message.params?.uri === 'string' && urisOf(filter).includes(message.params.uri);
    default:
      return false;
  }
}

function urisOf(filter: JsonObject): string[] {
  return Array.isArray(filter.resourceSubscriptions) ? (filter.resourceSubscriptions as string[]) : [];
}

function asObject(value: unknown): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : {};
}
