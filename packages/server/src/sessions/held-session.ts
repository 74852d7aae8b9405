import { findProxyError, ProxyError, toJsonRpcError } from '../errors.ts';
import {
  cancelledRequestId,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../jsonrpc.ts';
import { isRequestAsNotification } from '../policy/grants.ts';
import type { ToolFilter } from '../policy/tool-filter.ts';
import { cancelUpstream, RunningRequests } from '../upstream/cancellation.ts';
import { abandonReason, Correlator, PendingRequests, type RequestOptions } from '../upstream/correlator.ts';
import {
  REFUSAL_DEFAULTS,
  ServerRequestRefusals,
  tooManyServerRequests,
} from '../upstream/server-request-refusals.ts';
import type { UpstreamTransport } from '../upstream/transport.ts';
import type { SessionReach } from './session-reach.ts';

/** Somewhere upstream messages can be delivered: a stream, a socket, a waiting call. */
export interface MessageSink {
  /**
   * Offers a message. Returns false when this sink cannot take it (closed, or it cannot answer
   * server-initiated requests), so the session tries the next candidate.
   */
  deliver(message: JsonRpcMessage): boolean;
  /**
   * The upstream failed while requests of this sink were in flight. Sinks without it get a
   * JSON-RPC error response per request instead (what a stream or a socket can carry).
   */
  fail?(error: ProxyError, requestId: RequestId): void;
  /** The session ended: nothing more will come (a stream should end now). */
  end?(): void;
}

/**
 * A credential that may change while a session holds it: the OAuth broker's
 * (credentials/live-credential.ts), absent when the caller or the operator brought the token.
 */
export interface SessionCredential {
  /** The token to send now: the session's upstream reads it at each request. */
  readonly bearer: () => string | undefined;
  /**
   * Reads the token again before a caller's messages go upstream; an error when the user ended
   * the connection since the session opened (review6 OAUTH-1). Never rejects.
   */
  freshen(): Promise<ProxyError | undefined>;
  /**
   * The upstream refused `sent`, the token a message went with (401): true when a newer one took
   * its place (a refresh, or one already made), so the message may go once more. Never rejects.
   */
  refused(sent: string | undefined): Promise<boolean>;
}

/** The `_meta` key naming the `subscriptions/listen` request a notification belongs to. */
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

/** How many undeliverable notifications a session keeps for a standalone stream to come. */
const BACKLOG_LIMIT = 256;
/**
 * And how many bytes (their JSON text), oldest dropped first. Each may be as large as the
 * upstream response limit, so a count alone let one session hold gigabytes (issue 14, finding 5).
 */
const BACKLOG_BYTES = 1_048_576;

/** An inbound side and an upstream connection, held together by the proxy. */
export class HeldSession {
  readonly upstream: UpstreamTransport;
  /** What the session is connected to (URL or configured server name), to refuse reuse elsewhere. */
  readonly target: string;
  /** The upstream transport's kind (`sse`, `websocket`, `stdio`...), for the status page. */
  readonly transport: string;
  /** A raw URL target's: the URL grant it was opened under, the URLs it was sent on to. */
  readonly reach: SessionReach | undefined;
  /** Where each request's answer goes. */
  readonly #pending = new PendingRequests<MessageSink>();
  /** The answers {@link call} waits for. */
  readonly #calls = new Correlator();
  readonly #progress = new Map<string, MessageSink>();
  /** Sinks with requests in flight, most recent last. */
  readonly #active: MessageSink[] = [];
  /**
   * How many requests each sink of {@link #active} has in flight: a response tells at once whether
   * its sink is done, without a scan of every pending request (64 at a time on a busy session).
   */
  readonly #openCount = new Map<MessageSink, number>();
  /**
   * Undeliverable notifications as JSON text: a string costs its length, a parsed message up to
   * twenty times that. Parsed again when a standalone channel takes them.
   */
  readonly #backlog: string[] = [];
  #backlogBytes = 0;
  #standalone: MessageSink | undefined;
  /**
   * Requests whose answers a tool filter must see, and the filter: each request's own, its
   * caller's grant at the time (issue 17 review, finding 2), never the session opener's.
   */
  readonly #filtered = new PendingRequests<ToolFilter>();
  /** Abort handles of requests whose upstream exchange is still running. */
  readonly #inFlight = new RunningRequests();
  /** Aborted when the upstream side ends: refusals still in flight end with it. */
  readonly #done = new AbortController();
  /**
   * Server requests nobody connected can answer. A session outlives many of them, so only their
   * concurrency is bounded (issue 14 review, F2), not their number.
   */
  readonly #refusals: ServerRequestRefusals;
  #closed = false;
  #failure: ProxyError | undefined;
  #onClosed: Array<() => void> = [];
  readonly #credential: SessionCredential | undefined;

  constructor(
    target: string,
    upstream: UpstreamTransport,
    transport = 'unknown',
    credential?: SessionCredential | undefined,
    reach?: SessionReach | undefined,
  ) {
    this.target = target;
    this.reach = reach;
    this.upstream = upstream;
    this.transport = transport;
    this.#credential = credential;
    this.#refusals = new ServerRequestRefusals(
      (reply, signal) => upstream.send(reply, { signal }),
      this.#done.signal,
      { ...REFUSAL_DEFAULTS, maxRefused: Number.POSITIVE_INFINITY },
    );
    upstream.onmessage = (message) => this.#route(message);
    upstream.onerror = (error) => {
      this.#failure = error;
      this.#failPending(error);
    };
    upstream.onclose = () => {
      this.#closed = true;
      this.#done.abort();
      const open = new Set([...this.#pending.values(), ...this.#active]);
      this.#failPending(new ProxyError('upstream_unreachable', 'The MCP server connection closed.'));
      // Streams still open for this session (answer streams, the GET stream) end with it.
      for (const sink of [...open, this.#standalone]) sink?.end?.();
      for (const callback of this.#onClosed.splice(0)) callback();
    };
  }

  /** True while requests are in flight or the upstream transport holds work of its own. */
  get busy(): boolean {
    return this.#pending.size > 0 || this.upstream.busy === true;
  }

  /** True once the upstream connection has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The last upstream failure, if any: why the connection ended. */
  get failure(): ProxyError | undefined {
    return this.#failure;
  }

  /**
   * Before a caller's messages go through this session: its credential is read again (a refresh
   * or a new sign-in reaches a session already open), and when the user ended it since the
   * session opened (review6 OAUTH-1) the session closes, its streams with it, and the error is
   * thrown: the upstream authenticated with the ended token must serve nobody any more.
   */
  async renew(): Promise<void> {
    const ended = await this.#credential?.freshen();
    if (ended === undefined) return;
    this.#failure = ended;
    await this.close().catch(() => {});
    throw ended;
  }

  /**
   * The broker's token a message sent through this session now goes with (undefined: none, or
   * not the broker's). Its sender keeps it for {@link refused}: the token a refusal names is the
   * one the message carried, not whatever the session holds by the time the refusal comes.
   */
  get bearer(): string | undefined {
    return this.#credential?.bearer();
  }

  /**
   * A message of this session, sent with `sentWith` ({@link bearer} as it went), failed with
   * `error`: true when it was the upstream's 401 to the broker's token and a newer token is in
   * place now, so the caller sends it once more (issue 18, held-signin); only a token the vault
   * still holds is refreshed (review10 HARD-2). False for anything else, and for a session
   * without the broker's credential: the refusal then stands, or the caller is asked to sign in.
   */
  async refused(error: unknown, sentWith: string | undefined): Promise<boolean> {
    const refusal = findProxyError(error);
    if (this.#credential === undefined || refusal?.code !== 'upstream_unauthorized') return false;
    return refusal.status === 401 && (await this.#credential.refused(sentWith));
  }

  /**
   * {@link renew} for a session the proxy holds for itself (a pooled one, a virtual server's
   * member): false when its sign-in was ended and it is closed now, so the caller opens another.
   */
  async renewed(): Promise<boolean> {
    return this.renew().then(
      () => true,
      () => false,
    );
  }

  /** Registers a callback for when the upstream side ends (the store then forgets the session). */
  onClosed(callback: () => void): void {
    if (this.#closed) callback();
    else this.#onClosed.push(callback);
  }

  /**
   * Sends a client request upstream; its response (and its progress) will go to `sink`.
   * `filter` is the tool allowlist of the caller making this request (policy/tool-filter.ts
   * `toolFilterFor` of the target resolved for it now), or undefined when nothing restricts it:
   * every caller names it, so a session opened under a wider grant never serves a narrower one
   * (another token of the same subject, or after a reload) with the opener's.
   */
  async request(message: JsonRpcRequest, sink: MessageSink, filter: ToolFilter | undefined): Promise<void> {
    if (this.#pending.has(message.id)) throw new ProxyError('request_id_in_use');
    const refusal = filter?.refusal(message);
    if (refusal) {
      sink.deliver(refusal);
      return;
    }
    this.#pending.add(message.id, sink);
    const open = this.#openCount.get(sink) ?? 0;
    this.#openCount.set(sink, open + 1);
    if (filter?.filters(message)) this.#filtered.add(message.id, filter);
    const token = progressToken(message);
    if (token !== undefined) this.#progress.set(token, sink);
    if (open === 0) this.#active.push(sink);
    // Over Streamable HTTP, closing a request's stream is its cancellation (2026-07-28): keep a
    // handle to abort it when the caller cancels or goes away.
    const controller = this.#inFlight.start(message.id);
    try {
      await this.upstream.send(message, { signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted) return;
      this.#forget(message.id, token, sink);
      throw error;
    } finally {
      this.#inFlight.finish(message.id, controller);
    }
  }

  /**
   * Sends one request and resolves with its response: for callers that cannot take anything
   * else (POST /proxy). Server-initiated requests are refused on their behalf, unless `related`
   * takes them (a caller that relays what comes for its request: a virtual server's client);
   * a timeout or an abort cancels the request upstream.
   */
  async call(
    message: JsonRpcRequest,
    options: RequestOptions,
    filter: ToolFilter | undefined,
    related?: (incoming: JsonRpcMessage) => boolean,
  ): Promise<JsonRpcResponse> {
    let serverRequests = 0;
    const sink: MessageSink = {
      deliver: (incoming) => {
        if (related !== undefined && !isResponse(incoming) && related(incoming)) return true;
        // This caller cannot answer server requests (they are refused for it); an upstream that
        // keeps sending them fails the call (issue 14 review, F2).
        if (isRequest(incoming) && ++serverRequests > REFUSAL_DEFAULTS.maxRefused) {
          this.abandon(sink, 'too many server requests');
          this.#calls.fail(message.id, tooManyServerRequests());
          return false;
        }
        if (!isResponse(incoming) || incoming.id !== message.id) return false;
        return this.#calls.settle(incoming.id, incoming);
      },
      fail: (error) => this.#calls.fail(message.id, error),
    };
    const expected = this.#calls.expect(message.id, {
      ...options,
      onAbandon: (timedOut) => this.abandon(sink, abandonReason(timedOut)),
    });
    // The caller left before the request went out: never send it, so there is nothing to cancel.
    if (expected.signal.aborted) return expected.answer;
    // The answer, a failure or the deadline ends the call even while the send still runs: a
    // send may wait on the upstream itself (an era facade's own handshake), and an upstream
    // that never lets it finish must not hold the caller past its timeout (issue 14, #1).
    const sent = this.request(message, sink, filter).then(
      () => expected.answer,
      (error: unknown) => {
        // A send that failed (the upstream's 401) ends the wait too: its id is free at once
        // for the caller's retry with a refreshed token, not only after the deadline.
        this.#calls.fail(message.id, error);
        throw error;
      },
    );
    sent.catch(() => {});
    return Promise.race([sent, expected.answer]);
  }

  /**
   * Sends a client notification or a client's answer to a server request upstream. A
   * notification under a request's method is never sent (the surfaces drop it first; this is
   * the last line, for every surface a held session serves).
   */
  async send(message: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (isRequestAsNotification(message)) return;
    const cancelled = cancelledRequestId(message);
    if (cancelled !== undefined) this.#inFlight.cancel(cancelled);
    await this.upstream.send(message);
  }

  /**
   * The caller behind `sink` went away: forget its routes and cancel what it left in flight
   * upstream, as the MCP spec asks of a client that abandons a request.
   */
  abandon(sink: MessageSink, reason = 'client disconnected'): void {
    for (const [requestId, owner] of this.#pending.entries()) {
      if (owner !== sink) continue;
      this.#pending.delete(requestId);
      this.#filtered.delete(requestId);
      this.#inFlight.cancel(requestId);
      void cancelUpstream(this.upstream, requestId, reason);
    }
    this.#release(sink);
  }

  /** Makes `sink` the standalone channel (GET stream, WebSocket) and flushes the backlog to it. */
  attachStandalone(sink: MessageSink): void {
    this.#standalone = sink;
    while (this.#backlog.length > 0) {
      const text = this.#backlog[0] as string;
      if (!sink.deliver(JSON.parse(text) as JsonRpcMessage)) break;
      this.#backlog.shift();
      this.#backlogBytes -= text.length;
    }
  }

  /** The standalone channel closed. */
  detachStandalone(sink: MessageSink): void {
    if (this.#standalone === sink) this.#standalone = undefined;
  }

  /** Ends the standalone channel (shutdown: a GET stream never ends by itself). */
  endStandalone(): void {
    this.#standalone?.end?.();
  }

  /** True while a standalone channel is attached. */
  get hasStandalone(): boolean {
    return this.#standalone !== undefined;
  }

  /** Closes the upstream connection. */
  async close(): Promise<void> {
    await this.upstream.close();
  }

  #route(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      const sink = this.#pending.take(message.id);
      if (!sink) return;
      const filter = this.#filtered.take(message.id);
      sink.deliver(filter ? filter.filter(message) : message);
      this.#settled(sink);
      return;
    }
    if (!isRequest(message)) {
      const token = notificationProgressToken(message);
      const owner = token === undefined ? undefined : this.#progress.get(token);
      if (owner?.deliver(message)) return;
      // A `subscriptions/listen` stream's notifications name the request that opened it.
      const subscription = (message.params?._meta as Record<string, unknown> | undefined)?.[SUBSCRIPTION_ID];
      const listener =
        typeof subscription === 'string' || typeof subscription === 'number'
          ? this.#pending.get(subscription)
          : undefined;
      if (listener?.deliver(message)) return;
    }
    // Server-initiated traffic: the most recent open request stream first (a tool call asking
    // for sampling is waiting on it), then the standalone channel.
    for (let i = this.#active.length - 1; i >= 0; i--) {
      if ((this.#active[i] as MessageSink).deliver(message)) return;
    }
    if (this.#standalone?.deliver(message)) return;
    if (isRequest(message)) {
      // Nobody connected can answer: say so at once rather than leave the server waiting.
      this.#refusals.refuse(message, `No connected client can answer "${message.method}" right now.`);
      return;
    }
    this.#keep(message);
  }

  /** Keeps an undeliverable notification for a standalone channel to come, within the bounds. */
  #keep(message: JsonRpcMessage): void {
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch {
      return; // Not representable (too deep to serialise): nobody could be sent it anyway.
    }
    if (text.length > BACKLOG_BYTES) return;
    this.#backlog.push(text);
    this.#backlogBytes += text.length;
    while (this.#backlog.length > BACKLOG_LIMIT || this.#backlogBytes > BACKLOG_BYTES) {
      this.#backlogBytes -= (this.#backlog.shift() as string).length;
    }
  }

  #forget(id: RequestId, token: string | undefined, sink: MessageSink): void {
    if (this.#pending.delete(id, sink)) this.#settled(sink);
    this.#filtered.delete(id);
    if (token !== undefined) this.#progress.delete(token);
  }

  /** One of `sink`'s requests is no longer pending; the last one releases the sink. */
  #settled(sink: MessageSink): void {
    const open = (this.#openCount.get(sink) ?? 1) - 1;
    if (open > 0) this.#openCount.set(sink, open);
    else this.#release(sink);
  }

  #release(sink: MessageSink): void {
    this.#openCount.delete(sink);
    for (const [token, owner] of this.#progress) if (owner === sink) this.#progress.delete(token);
    const index = this.#active.indexOf(sink);
    if (index !== -1) this.#active.splice(index, 1);
  }

  #failPending(error: ProxyError): void {
    for (const [id, sink] of this.#pending.drain()) {
      if (sink.fail) sink.fail(error, id);
      else sink.deliver(toJsonRpcError(error, id));
    }
    // Request keys the filter was to see leave with their requests (issue 14 review, F4).
    this.#filtered.drain();
    this.#progress.clear();
    this.#active.length = 0;
    this.#openCount.clear();
  }
}

function progressToken(message: JsonRpcRequest): string | undefined {
  const meta = message.params?._meta as { progressToken?: unknown } | undefined;
  return tokenKey(meta?.progressToken);
}

function notificationProgressToken(message: JsonRpcNotification): string | undefined {
  return message.method === 'notifications/progress' ? tokenKey(message.params?.progressToken) : undefined;
}

function tokenKey(token: unknown): string | undefined {
  if (typeof token === 'string') return `s:${token}`;
  if (typeof token === 'number') return `n:${token}`;
  return undefined;
}
