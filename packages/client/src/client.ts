/**
 * @module client
 * {@link MCPProxyClient}: the typed MCP client that reaches any MCP server through mcp-proxy,
 * from a browser or Node. One method per MCP request, a typed `request()` escape hatch, typed
 * notification listeners and server-request handlers, an `AbortSignal` and a timeout on every
 * call.
 */

import { type AuthorizeOptions, openSignIn, SignInGate } from './auth-required.ts';
import {
  type CompleteOptions,
  type Listings,
  type ListOptions,
  page,
  type RequestArgs,
  type RequestOptions,
  walkListing,
} from './call-options.ts';
import { Calls } from './calls.ts';
import { type Disconnected, endConnection, listConnections, type UpstreamConnection } from './connections.ts';
import { MCPProxyError, McpError, NotSupportedError, UpstreamAuthRequiredError } from './errors.ts';
import { type ClientEventMap, Emitter, type Listener } from './events.ts';
import { invalid, type MCPProxyClientOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { type RequestHandler, ServerRequests } from './server-requests.ts';
import type { SignInResult } from './sign-in.ts';
import { abortable, callSignal } from './signals.ts';
import { createTransport } from './transport/create.ts';
import type { Transport } from './transport/transport.ts';
import { openWebSocket } from './transport/ws.ts';
import type {
  CallToolResult,
  CompleteArgument,
  CompleteResult,
  EmptyResult,
  GetPromptResult,
  InitializeResult,
  ListPromptsResult,
  ListResourcesResult,
  ListResourceTemplatesResult,
  ListToolsResult,
  LoggingLevel,
  PromptReference,
  ReadResourceResult,
  ResourceTemplateReference,
  ResultOf,
  ServerRequestMethod,
} from './types.ts';

/**
 * A typed MCP client that talks to an MCP server through mcp-proxy.
 *
 * @example
 * ```ts
 * import MCPProxyClient, { McpError, ProxyAuthError } from 'mcp-proxy-client';
 *
 * const client = new MCPProxyClient({
 *   proxyUrl: 'https://proxy.example.com',
 *   proxyToken: 'your_secure_proxy_token_here',
 *   mcpServerUrl: 'https://mcp.example.com/mcp',
 *   mcpToken: 'optional_mcp_server_token',
 * });
 * await client.initialize();
 * const { tools } = await client.listTools();
 * const result = await client.callTool('echo', { message: 'hi' }, { signal: AbortSignal.timeout(5000) });
 * console.log(tools.map((t) => t.name), result.content);
 * await client.close();
 * ```
 */
export class MCPProxyClient {
  readonly #options: ResolvedOptions;
  readonly #transport: Transport;
  readonly #events = new Emitter();
  readonly #lifetime = new AbortController();
  readonly #handlers = new ServerRequests();
  readonly #sockets = new Set<WebSocket>();
  readonly #signIns = new SignInGate();
  readonly #calls: Calls;
  #initializeResult: InitializeResult | undefined;

  /** Validates `options` (throws `InvalidInputError`); sends nothing yet. */
  constructor(options: MCPProxyClientOptions) {
    this.#options = resolveOptions(options);
    this.#transport = createTransport(this.#options, {
      onnotification: (notification) => {
        this.#calls.progressed(notification);
        this.#events.emit(notification);
      },
      onrequest: (request, signal) => this.#handlers.answer(request, signal),
    });
    this.#calls = new Calls(this.#transport, this.#options.timeoutMs, this.#lifetime.signal);
  }

  /** The MCP session id after `initialize()`, if the server uses sessions. */
  get sessionId(): string | undefined {
    return this.#transport.session.id;
  }

  /** The protocol version negotiated by `initialize()`. */
  get protocolVersion(): string | undefined {
    return this.#transport.session.protocolVersion;
  }

  /** The result of the last successful `initialize()` (server info, capabilities, instructions). */
  get initializeResult(): InitializeResult | undefined {
    return this.#initializeResult;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#lifetime.signal.aborted;
  }

  /**
   * Starts a session: sends `initialize` (protocol version, capabilities, client info), keeps
   * the session id and negotiated version for later calls, then sends
   * `notifications/initialized`. Calling it again starts a new session (the old one ends).
   * Capabilities: `sampling`, `elicitation` and `roots` for the handlers registered with
   * {@link MCPProxyClient.setRequestHandler}, then the `capabilities` option over them.
   */
  initialize(options?: RequestOptions): Promise<InitializeResult> {
    return this.#initialize(options, true);
  }

  /** `initialize()`; `signIn` false: a failed sign-in check is not handed to `onAuthRequired`. */
  async #initialize(options: RequestOptions | undefined, signIn: boolean): Promise<InitializeResult> {
    this.#transport.resetSession();
    this.#initializeResult = undefined;
    const { protocolVersion, clientInfo } = this.#options;
    const capabilities = { ...this.#handlers.capabilities(), ...this.#options.capabilities };
    const params = { protocolVersion, capabilities, clientInfo };
    const result = signIn
      ? await this.request('initialize', params, options)
      : await this.#calls.request('initialize', params, options);
    // MCP lifecycle: later requests carry the version the server chose (spec 2025-06-18, basic/transports).
    this.#transport.setProtocolVersion(result.protocolVersion);
    await this.notify('notifications/initialized', undefined, options);
    this.#initializeResult = result;
    return result;
  }

  /** Lists the server's tools (one page; pass `cursor` for the next). */
  listTools(options?: ListOptions): Promise<ListToolsResult> {
    return this.request('tools/list', page(options), options);
  }

  /** Calls tool `name` with `args`. A tool's own failure is `isError: true` in the result. */
  callTool(name: string, args?: Record<string, unknown>, options?: RequestOptions): Promise<CallToolResult> {
    return this.request('tools/call', args === undefined ? { name } : { name, arguments: args }, options);
  }

  /** Lists the server's resources (one page). */
  listResources(options?: ListOptions): Promise<ListResourcesResult> {
    return this.request('resources/list', page(options), options);
  }

  /** Lists the server's resource templates (one page). */
  listResourceTemplates(options?: ListOptions): Promise<ListResourceTemplatesResult> {
    return this.request('resources/templates/list', page(options), options);
  }

  /** Reads the resource at `uri`. */
  readResource(uri: string, options?: RequestOptions): Promise<ReadResourceResult> {
    return this.request('resources/read', { uri }, options);
  }

  /**
   * Subscribes to updates of `uri`. Updates arrive as `notifications/resources/updated`, which
   * only a streaming transport can deliver (not `http`).
   */
  subscribeResource(uri: string, options?: RequestOptions): Promise<EmptyResult> {
    return this.request('resources/subscribe', { uri }, options);
  }

  /** Ends a subscription to `uri`. */
  unsubscribeResource(uri: string, options?: RequestOptions): Promise<EmptyResult> {
    return this.request('resources/unsubscribe', { uri }, options);
  }

  /** Lists the server's prompts (one page). */
  listPrompts(options?: ListOptions): Promise<ListPromptsResult> {
    return this.request('prompts/list', page(options), options);
  }

  /** Gets prompt `name` filled with `args`. */
  getPrompt(name: string, args?: Record<string, string>, options?: RequestOptions): Promise<GetPromptResult> {
    return this.request('prompts/get', args === undefined ? { name } : { name, arguments: args }, options);
  }

  /** Asks for completions of `argument` of a prompt or resource template. */
  complete(
    ref: PromptReference | ResourceTemplateReference,
    argument: CompleteArgument,
    options?: CompleteOptions,
  ): Promise<CompleteResult> {
    const context = options?.context;
    return this.request(
      'completion/complete',
      context === undefined ? { ref, argument } : { ref, argument, context },
      options,
    );
  }

  /** Checks the server is alive. */
  ping(options?: RequestOptions): Promise<EmptyResult> {
    return this.request('ping', undefined, options);
  }

  /** Sets the minimum level of log messages the server sends (`notifications/message`). */
  setLoggingLevel(level: LoggingLevel, options?: RequestOptions): Promise<EmptyResult> {
    return this.request('logging/setLevel', { level }, options);
  }

  /**
   * Walks every page of a listing, one item at a time.
   *
   * @example
   * ```ts
   * for await (const tool of client.iterate('tools')) console.log(tool.name);
   * ```
   */
  iterate<K extends keyof Listings>(kind: K, options?: RequestOptions): AsyncGenerator<Listings[K], void> {
    return walkListing(kind, (method, params) => this.request(method, params, options));
  }

  /**
   * Sends any request: typed by the MCP spec for its methods, an open `Result` otherwise.
   * Throws {@link McpError} when the server answers with a JSON-RPC error.
   *
   * @example
   * ```ts
   * const { tools } = await client.request('tools/list', { cursor });
   * const custom = await client.request('vendor/method', { any: 'params' });
   * ```
   */
  async request<M extends string>(method: M, ...args: RequestArgs<M>): Promise<ResultOf<M>> {
    const [params, options] = args;
    if (typeof method !== 'string' || method === '') throw invalid('method', 'must be a non-empty string');
    try {
      return await this.#calls.request(method, params, options);
    } catch (error) {
      if (!(error instanceof UpstreamAuthRequiredError) || this.#options.onAuthRequired === undefined) {
        throw error;
      }
      await this.#signedIn(error, options?.signal);
      // A failed initialize may have left a session id behind (ws: see #signedIn).
      if (method === 'initialize' && this.#options.transport !== 'ws') this.#transport.resetSession();
      return this.#calls.request(method, params, options);
    }
  }

  /**
   * Opens the proxy's sign-in page for `error` in a popup and resolves once the user signed in to
   * the MCP server; then send the failed call again. **Call it from a user gesture** (a click
   * handler), synchronously: browsers block popups opened at any other time (`popup_blocked`).
   *
   * The page asks this window for the client's proxy token (so the sign-in is bound to the user
   * who made the call, not to whoever opens the link); the client answers only that popup, and
   * only while it shows a page of the proxy's origin. Rejects with a `SignInError`
   * (`popup_blocked`, `popup_closed`, `sign_in_timeout`, `sign_in_failed`), an
   * `InvalidInputError` when the page is not under `proxyUrl`'s origin, a `NotSupportedError`
   * outside a browser, or the signal's reason.
   *
   * @example
   * ```ts
   * try { await client.callTool('search', { q }); }
   * catch (error) {
   *   if (!(error instanceof UpstreamAuthRequiredError)) throw error;
   *   signInButton.onclick = async () => {
   *     await client.authorize(error);
   *     await client.callTool('search', { q });
   *   };
   * }
   * ```
   */
  authorize(error: UpstreamAuthRequiredError, options: AuthorizeOptions = {}): Promise<SignInResult> {
    // No await before the popup opens: it must open within the caller's user gesture.
    return openSignIn(error, options, this.#options, this.#lifetime.signal);
  }

  /** Sends a notification (no answer), e.g. `notifications/roots/list_changed`. */
  async notify(method: string, params?: Record<string, unknown>, options?: RequestOptions): Promise<void> {
    if (typeof method !== 'string' || method === '') throw invalid('method', 'must be a non-empty string');
    await this.#calls.notify(method, params, options);
  }

  /**
   * Listens to server notifications: `'notification'` for all of them (narrow on `method`), or
   * one method by name for its params. Returns a function that removes the listener. Over the
   * `http` transport no notifications arrive; `streamable` and `ws` deliver them.
   */
  on<E extends keyof ClientEventMap>(event: E, listener: Listener<E>): () => void {
    return this.#events.on(event, listener);
  }

  /** Removes a listener added with {@link MCPProxyClient.on}. */
  off<E extends keyof ClientEventMap>(event: E, listener: Listener<E>): void {
    this.#events.off(event, listener);
  }

  /**
   * Answers the server's `method` requests with `handler` (replacing any earlier one); returns
   * a function that removes it. Register before `initialize()`: the client declares the matching
   * capability (`sampling`, `elicitation`, `roots`) there. `ping` is answered without one.
   * Needs a streaming transport (`streamable` or `ws`): over `http` the proxy answers the
   * server's requests itself, so this throws {@link NotSupportedError}.
   *
   * @example
   * ```ts
   * client.setRequestHandler('sampling/createMessage', async ({ messages, maxTokens }) => ({
   *   role: 'assistant', content: { type: 'text', text: await myLlm(messages, maxTokens) }, model: 'my-llm',
   * }));
   * client.setRequestHandler('elicitation/create', async (params) => ({ action: 'decline' }));
   * ```
   */
  setRequestHandler<M extends ServerRequestMethod>(method: M, handler: RequestHandler<M>): () => void {
    if (!this.#transport.streaming) {
      throw new NotSupportedError(
        'not_supported',
        'Over transport "http" (POST /proxy) server requests never reach the client (the proxy answers ' +
          'them "method not found"): use transport "streamable" or "ws".',
        { data: { field: 'transport' } },
      );
    }
    if (typeof handler !== 'function') throw invalid('handler', 'must be a function');
    return this.#handlers.set(method, handler);
  }

  /**
   * The seed's raw WebSocket to the proxy's `/ws`, aimed at this client's MCP server and
   * authenticated with the proxy token (as a subprotocol, not in the URL). One JSON-RPC
   * message per text frame both ways; the proxy holds the MCP session for the socket's life.
   * The client does not read it; `close()` closes it.
   *
   * @example
   * ```ts
   * const ws = client.connectWebSocket();
   * ws.onmessage = (event) => console.log('Received:', event.data);
   * ws.onopen = () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }));
   * ```
   */
  connectWebSocket(): WebSocket {
    if (this.closed) throw new MCPProxyError('closed', 'The client was closed.');
    const socket = openWebSocket(this.#options);
    this.#sockets.add(socket);
    socket.addEventListener('close', () => this.#sockets.delete(socket));
    // The `ws` package's socket throws an 'error' nobody listens to out of the process (issue
    // #14.15); 'close' follows it, and the caller's own listeners still see both.
    socket.addEventListener('error', () => {});
    return socket;
  }

  /**
   * The MCP servers the proxy holds an upstream sign-in for, for this client's proxy token's
   * principal (`GET /oauth/connections`): server, resource, issuer, scopes, expiry. Never a
   * token. For a "connected accounts" page (the proxy's docs/oauth.md).
   *
   * @example
   * ```ts
   * for (const c of await client.connections()) console.log(c.server, c.scopes, c.expiresAt);
   * ```
   */
  connections(options?: RequestOptions): Promise<UpstreamConnection[]> {
    return this.#calls.send(options, (signal) => listConnections(this.#options, signal));
  }

  /**
   * Ends the upstream sign-in to `server` (a `server` or `resource` that {@link connections}
   * lists): the proxy revokes the tokens at the authorization server where it offers
   * revocation (RFC 7009), then forgets them; the next call to that server asks the user to sign
   * in again. Rejects with `InvalidInputError` code `oauth_connection_not_found` when there is
   * no such connection.
   */
  disconnect(server: string, options?: RequestOptions): Promise<Disconnected[]> {
    if (typeof server !== 'string' || server === '') throw invalid('server', 'must be a non-empty string');
    return this.#calls.send(options, (signal) => endConnection(this.#options, server, signal));
  }

  /**
   * Closes the client: calls in flight reject with `MCPProxyError` code `closed`, later calls
   * too, and listeners are dropped. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#lifetime.signal.aborted) return;
    this.#lifetime.abort(new MCPProxyError('closed', 'The client was closed.'));
    this.#events.clear();
    this.#handlers.clear();
    for (const socket of this.#sockets) socket.close(1000, 'client closed');
    await this.#transport.close();
  }

  /**
   * Waits for the sign-in `error` asks for, through the `onAuthRequired` hook (shared with the
   * other calls waiting for the same server); throws `error` when the hook gave up.
   */
  async #signedIn(error: UpstreamAuthRequiredError, signal: AbortSignal | undefined): Promise<void> {
    const hook = this.#options.onAuthRequired;
    if (hook === undefined) throw error;
    const lifetime = this.#lifetime.signal;
    const outcome = this.#signIns.join(error, async () => {
      const answer = await hook(error, {
        signal: lifetime,
        authorize: (options) => this.authorize(error, options),
      });
      if (answer === false) return false;
      if (this.#options.transport === 'ws') {
        // Over `ws` the proxy reads the stored token per frame, but a WebSocket upstream takes it
        // only at its own handshake: a new socket, opened once for every call waiting, carries the
        // token the sign-in stored (initialized again, without asking for another sign-in, if the
        // old one was).
        const initialized = this.#initializeResult !== undefined;
        this.#transport.resetSession();
        if (initialized) await this.#initialize(undefined, false);
      }
      return true;
    });
    // The user's sign-in is not bounded by the call's timeoutMs; the caller's signal and close() are.
    const wait = callSignal([signal, lifetime], 0);
    try {
      if (!(await abortable(outcome, wait.signal))) throw error;
    } finally {
      wait.dispose();
    }
  }
}
