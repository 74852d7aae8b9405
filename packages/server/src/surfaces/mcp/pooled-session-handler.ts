/**
 * @module surfaces/mcp/pooled-session-handler
 * `/mcp` for a modern (2026-07-28) client whose server speaks only the session era (or is
 * reached over stdio, WebSocket or HTTP+SSE and found to): each POST is one request, answered
 * through an upstream session the proxy pools for the caller's token and client envelope. The
 * proxy answers what a 2026-07-28 server refuses before dispatch itself (an incomplete `_meta`
 * envelope, an unsupported version, the removed session-era methods). An answer is an event
 * stream (progress or log messages, then the result) when the request asked for progress or
 * logs or is a `subscriptions/listen`, else JSON when the client accepts it (so a -32601 can be
 * a 404). Closing the stream cancels the request upstream; a `subscriptions/listen` stream stays
 * open until the client closes it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UpstreamTarget } from '../../dispatch/connector.ts';
import { META, MODERN_VERSION, metaOf } from '../../eras/classify.ts';
import { PROTOCOL_ERRORS, ProxyError, protocolError, toJsonRpcError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import {
  type EventStreamOptions,
  EventStreamWriter,
  idleWatch,
  sendEventStream,
} from '../../http/event-stream-writer.ts';
import { acceptsEventStream, acceptsJson } from '../../http/inbound-checks.ts';
import {
  isRequest,
  type JsonObject,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type MessageBatch,
} from '../../jsonrpc.ts';
import { toolFilterFor } from '../../policy/tool-filter.ts';
import type { HeldSession, MessageSink } from '../../sessions/held-session.ts';
import type { ModernSessionPool, PoolContext, PooledCall, PoolTarget } from '../../sessions/modern-pool.ts';
import { checkParamHeaders, type ParamHeaderCatalog } from '../../upstream/param-headers.ts';
import { refusalInAnswer } from '../../upstream/status.ts';
import type { Intercept } from './held-session-handler.ts';

/**
 * What a pooled session is for: a configured server (`UpstreamTarget`), or a virtual server
 * (virtual/virtual-session.ts); its `tools` grant, if any, filters each request.
 */
type PooledTarget = PoolTarget & { readonly tools?: readonly string[] | undefined };

/** Collaborators and limits. */
export interface PooledSessionHandlerDeps<T extends PooledTarget = UpstreamTarget> {
  readonly pool: ModernSessionPool<T>;
  /** `x-mcp-header` declarations, learnt from the `tools/list` answers the pooled sessions relay. */
  readonly paramHeaders: ParamHeaderCatalog;
  readonly timeoutMs: number;
  readonly stream: EventStreamOptions;
}

/** Serves modern requests bound for session-era upstreams. */
export class PooledSessionHandler<T extends PooledTarget = UpstreamTarget> {
  readonly #deps: PooledSessionHandlerDeps<T>;

  constructor(deps: PooledSessionHandlerDeps<T>) {
    this.#deps = deps;
  }

  /** POST: one modern request (or notifications, which need no answer). */
  async post(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch,
    ctx: PoolContext<T>,
    /** Looks at an error answer first and may replace it (the OAuth broker's sign-in). */
    intercept?: Intercept,
  ) {
    const requests = inbound.messages.filter(isRequest);
    // A modern client's only notification is cancellation on stdio; over HTTP closing the stream
    // cancels, so notifications are acknowledged and dropped.
    if (requests.length === 0) return reply.code(202).send();
    if (inbound.batch || requests.length > 1) {
      throw new ProxyError(
        'invalid_message',
        'MCP 2026-07-28 sends one request per POST; batches are not accepted.',
      );
    }
    const message = requests[0] as JsonRpcRequest;
    // The proxy is the server this client sees: it refuses what a 2026-07-28 server refuses
    // before any upstream session is opened for it.
    const refusal = refusalOf(message);
    if (refusal) {
      request.audit?.answer(refusal.body);
      return reply.code(refusal.status).type('application/json').send(refusal.body);
    }
    const session = await this.#deps.pool.session(ctx, message);
    if (message.method === 'tools/call') await this.#checkParamHeaders(request, session, message, ctx);
    const prepare = () => this.#deps.pool.prepare(session, message, toolFilterFor(ctx.target));
    // Stream only what may send something before its answer (like the SDK's `auto` mode): a
    // listen stream, and requests that asked for progress or log messages. Everything else gets
    // JSON when the client takes it, so the answer can set the HTTP status (404 for -32601).
    const meta = metaOf(message);
    const streams =
      message.method === 'subscriptions/listen' ||
      meta.progressToken !== undefined ||
      meta[META.logLevel] !== undefined;
    if (acceptsEventStream(request) && (streams || !acceptsJson(request))) {
      return this.#answerAsStream(request, reply, { session, message, prepare }, intercept);
    }
    if (!acceptsJson(request)) throw new ProxyError('not_acceptable');
    const signal = callerSignal(reply);
    const called = () =>
      prepare()
        .call({ timeoutMs: this.#deps.timeoutMs, signal })
        .catch((error: unknown) => toJsonRpcError(error, message.id));
    const sentWith = session.bearer;
    let response = await called();
    if (await sendsOnceMore(session, response, sentWith)) response = await called();
    if (intercept && 'error' in response) response = (await intercept(message, response)) ?? response;
    if (message.method === 'tools/list' && 'result' in response)
      this.#deps.paramHeaders.learn(ctx.targetKey, response.result);
    request.audit?.answer(response);
    // A method the server does not implement: 404 with -32601 (2026-07-28, Streamable HTTP).
    const status =
      'error' in response && response.error.code === PROTOCOL_ERRORS.method_not_found ? 404 : 200;
    return reply.code(status).type('application/json').send(response);
  }

  /**
   * As the 2026-07-28 server this client sees, the proxy checks `Mcp-Param-*` headers against
   * the tool's `x-mcp-header` parameters (looked up once through the session when unknown).
   */
  async #checkParamHeaders(
    request: FastifyRequest,
    session: HeldSession,
    message: JsonRpcRequest,
    ctx: PoolContext<T>,
  ): Promise<void> {
    const name = message.params?.name;
    if (typeof name !== 'string') return;
    const { paramHeaders, pool, timeoutMs } = this.#deps;
    if (
      paramHeaders.declared(ctx.targetKey, name) === undefined &&
      paramHeaders.needsLookup(ctx.targetKey, name)
    ) {
      const list: JsonRpcRequest = {
        jsonrpc: '2.0',
        id: 'mcp-proxy-tools',
        method: 'tools/list',
        params: { _meta: metaOf(message) },
      };
      // The proxy's own look-up, never shown to the caller: the server's whole list.
      const listed = await pool
        .prepare(session, list, undefined)
        .call({ timeoutMs })
        .catch(() => undefined);
      if (listed && 'result' in listed) paramHeaders.learn(ctx.targetKey, listed.result);
    }
    const declared = paramHeaders.declared(ctx.targetKey, name);
    if (declared) checkParamHeaders(request.headers, declared, message.params?.arguments);
  }

  async #answerAsStream(
    request: FastifyRequest,
    reply: FastifyReply,
    pooled: { session: HeldSession; message: JsonRpcRequest; prepare: () => PooledCall },
    intercept: Intercept | undefined,
  ) {
    const { session, message } = pooled;
    const sentWith = session.bearer;
    let call = pooled.prepare();
    let retried = false;
    const writer = new EventStreamWriter(this.#deps.stream);
    writer.comment('stream open');
    // A listen stream is meant to stay quiet for long; any other answer may not go silent forever.
    const watchIdle = message.method !== 'subscriptions/listen';
    let answered = false;
    const idle = idleWatch(this.#deps.timeoutMs, () => {
      writer.write(toJsonRpcError(new ProxyError('upstream_timeout'), message.id));
      call.abandon();
      writer.close();
    });
    const armIdle = () => {
      if (watchIdle) idle.arm();
    };
    const sink: MessageSink = {
      deliver: (incoming) => {
        // A listen stream carries only its own subscription's notifications (and its end).
        if (!watchIdle && 'method' in incoming && !belongsTo(incoming, message.id)) return false;
        const refused = 'error' in incoming && incoming.id === message.id && !answered;
        if (refused && (intercept || (!retried && refusalInAnswer(incoming)))) {
          // The request may go once more (a refreshed token), or the answer be replaced (a
          // sign-in): it is written once that is known.
          answered = true;
          idle.stop();
          void resend(incoming).then(async (resent) => {
            if (resent) return;
            const final = await (intercept?.(message, incoming) ?? Promise.resolve(undefined)).then(
              (replacement) => replacement ?? incoming,
              (error: unknown) => toJsonRpcError(error, message.id),
            );
            writer.write(final);
            request.audit?.answer(final);
            writer.close();
          });
          return true;
        }
        if (!writer.write(incoming)) return false;
        armIdle();
        if ('id' in incoming && !('method' in incoming) && incoming.id === message.id) {
          answered = true;
          request.audit?.answer(incoming);
          writer.close();
        }
        return true;
      },
      end: () => writer.close(),
    };
    /** Sends the request once more after the upstream's 401 when a refreshed token is in place. */
    const resend = async (answer: JsonRpcResponse): Promise<boolean> => {
      if (retried || !(await sendsOnceMore(session, answer, sentWith)) || writer.closed) return false;
      retried = true;
      answered = false;
      armIdle();
      call = pooled.prepare();
      await call.start(sink).catch((error: unknown) => sink.deliver(toJsonRpcError(error, message.id)));
      return true;
    };
    writer.onClose(() => {
      idle.stop();
      // Closing the stream before the answer is the modern era's cancellation.
      if (!answered) call.abandon();
    });
    reply.raw.once('close', () => writer.close());
    armIdle();
    await call.start(sink).catch((error: unknown) => {
      sink.deliver(toJsonRpcError(error, message.id));
    });
    return sendEventStream(reply, writer);
  }
}

/**
 * Whether a pooled request, sent with `sentWith`, answered `answer` goes once more: the upstream
 * refused the broker's token (401) and a newer one took its place. The decision is the session's, as for every
 * held session (HeldSession.refused, issue 18 held-signin); a pooled session's facade answers the
 * refusal rather than throwing it.
 */
async function sendsOnceMore(
  session: HeldSession,
  answer: JsonRpcResponse,
  sentWith: string | undefined,
): Promise<boolean> {
  const refusal = refusalInAnswer(answer);
  return refusal !== undefined && (await session.refused(refusal, sentWith));
}

/** Session-era methods 2026-07-28 removed: a modern server answers them 404, -32601. */
const REMOVED_METHODS = new Set([
  'initialize',
  'ping',
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
]);

/** An answer the pooled session gives itself, without the upstream. */
interface Refusal {
  readonly status: number;
  readonly body: JsonRpcResponse;
}

/**
 * What a 2026-07-28 server refuses before dispatch: a request whose `_meta` envelope lacks the
 * protocol version or the client capabilities (400, -32602), one naming a version the proxy
 * does not speak (400, -32022 with the supported versions), and the removed session-era
 * methods (404, -32601).
 */
function refusalOf(message: JsonRpcRequest): Refusal | undefined {
  const meta = message.params?._meta;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    return invalidEnvelope(message, 'the request has no _meta envelope');
  }
  const envelope = meta as JsonObject;
  const version = envelope[META.protocolVersion];
  if (typeof version !== 'string') return invalidEnvelope(message, `_meta lacks ${META.protocolVersion}`);
  const capabilities = envelope[META.clientCapabilities];
  if (typeof capabilities !== 'object' || capabilities === null || Array.isArray(capabilities)) {
    return invalidEnvelope(message, `_meta lacks ${META.clientCapabilities}`);
  }
  if (version !== MODERN_VERSION) {
    const text = `Unsupported protocol version "${version.slice(0, 40)}": supported is ${MODERN_VERSION}.`;
    const data = { supported: [MODERN_VERSION], requested: version };
    return { status: 400, body: protocolError(message.id, 'unsupported_protocol_version', text, data) };
  }
  if (REMOVED_METHODS.has(message.method)) {
    const text = `Method not found: ${message.method} does not exist in protocol ${MODERN_VERSION}.`;
    return { status: 404, body: protocolError(message.id, 'method_not_found', text) };
  }
  return undefined;
}

function invalidEnvelope(message: JsonRpcRequest, detail: string): Refusal {
  return { status: 400, body: protocolError(message.id, 'invalid_params', `Invalid params: ${detail}.`) };
}

/** True when a notification was stamped for the `subscriptions/listen` request `id`. */
function belongsTo(message: JsonRpcMessage, id: JsonRpcRequest['id']): boolean {
  const meta =
    'params' in message ? (message.params?._meta as Record<string, unknown> | undefined) : undefined;
  return meta?.[META.subscriptionId] === id;
}
