/**
 * @module surfaces/mcp/held-session-handler
 * The proxy as a Streamable HTTP server in front of a held upstream (HTTP+SSE, WebSocket,
 * configured stdio): proxy-issued session ids, POST answered as JSON or as an event stream
 * per the request's Accept, a GET stream for server-initiated messages, DELETE to end.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UpstreamTarget } from '../../dispatch/connector.ts';
import { endableBy, type HeldSessions, serveCaller } from '../../dispatch/held-sessions.ts';
import { ProxyError, toJsonRpcError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import {
  type EventStreamOptions,
  EventStreamWriter,
  idleWatch,
  sendEventStream,
} from '../../http/event-stream-writer.ts';
import { acceptsEventStream, acceptsJson } from '../../http/inbound-checks.ts';
import { isRequest, type JsonRpcRequest, type JsonRpcResponse, type MessageBatch } from '../../jsonrpc.ts';
import { type ToolFilter, toolFilterFor } from '../../policy/tool-filter.ts';
import type { HeldSession, MessageSink } from '../../sessions/held-session.ts';
import type { SessionStore } from '../../sessions/store.ts';

/** What a request through a held session needs to know about the caller. */
export interface HeldSessionContext {
  readonly ownerId: string;
  /** The caller's rate class: a session opened here is admitted under it. */
  readonly rateClass?: string | undefined;
  readonly target: UpstreamTarget;
  readonly targetKey: string;
  readonly sessionId: string | undefined;
}

/** Collaborators and limits. */
export interface HeldSessionHandlerDeps {
  readonly sessions: SessionStore<HeldSession>;
  readonly held: HeldSessions;
  readonly timeoutMs: number;
  readonly stream: EventStreamOptions;
}

/** Serves `/mcp` for targets the proxy must hold a connection to. */
export class HeldSessionHandler {
  readonly #deps: HeldSessionHandlerDeps;

  constructor(deps: HeldSessionHandlerDeps) {
    this.#deps = deps;
  }

  /**
   * POST: one message or a batch. `intercept` looks at each error answer first and may replace
   * it (the OAuth broker's sign-in after the upstream's 401, or its step-up after a 403).
   */
  async post(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch,
    ctx: HeldSessionContext,
    intercept?: Intercept,
  ) {
    const { messages, batch } = inbound;
    const requests = messages.filter(isRequest);
    const opens = requests.some((m) => m.method === 'initialize');
    let sessionId = ctx.sessionId;
    let session: HeldSession;
    if (sessionId === undefined) {
      if (!opens) throw new ProxyError('session_required');
      const opened = await this.#deps.held.open(ctx, ctx.target);
      sessionId = opened.id;
      session = opened.session;
    } else {
      session = await this.#renewed(sessionId, ctx);
    }
    reply.header('mcp-session-id', sessionId);

    for (const message of messages) {
      if (!isRequest(message)) await session.send(message);
    }
    if (requests.length === 0) return reply.code(202).send();

    // The tool grant of this caller, now: not the session opener's (issue 17 review, finding 2).
    const filter = toolFilterFor(ctx.target);
    const answers = { session, filter, intercept };
    if (acceptsEventStream(request)) return this.#answerAsStream(request, reply, answers, requests);
    if (!acceptsJson(request)) throw new ProxyError('not_acceptable');
    const responses = await this.#answerAsJson(reply, answers, requests);
    for (const response of responses) request.audit?.answer(response);
    return reply
      .code(200)
      .type('application/json')
      .send(batch ? responses : responses[0]);
  }

  /** GET: the standalone stream for server-initiated messages. */
  async get(request: FastifyRequest, reply: FastifyReply, ctx: HeldSessionContext) {
    if (ctx.sessionId === undefined) throw new ProxyError('session_required');
    if (!acceptsEventStream(request))
      throw new ProxyError('not_acceptable', 'Accept must include text/event-stream.');
    const session = await this.#renewed(ctx.sessionId, ctx);
    if (session.hasStandalone) throw new ProxyError('stream_conflict');
    const writer = new EventStreamWriter(this.#deps.stream);
    // Clients wait for the GET's headers before going on; send them now, not with the first event.
    writer.comment('stream open');
    // A caller already gone must not take the backlog, nor hold the session's one GET stream.
    if (closeWhenCallerLeaves(reply, writer)) return sendEventStream(reply, writer);
    const sink: MessageSink = { deliver: (message) => writer.write(message), end: () => writer.close() };
    session.attachStandalone(sink);
    writer.onClose(() => session.detachStandalone(sink));
    const keepAlive = setInterval(() => {
      this.#deps.sessions.get(ctx.sessionId as string, ctx.ownerId);
      // A stream that keeps the session alive must not outlive its sign-in: one the user ended
      // closes the session, and this stream with it (review6 OAUTH-1).
      session.renew().catch(() => {});
    }, 30_000);
    keepAlive.unref();
    writer.onClose(() => clearInterval(keepAlive));
    return sendEventStream(reply, writer);
  }

  /**
   * DELETE: end the session and its upstream connection. Its owner may end it whatever URL grant
   * it was opened under (review15 URLPATTERN-3): a session its grant no longer serves is not
   * left holding a place under the owner's session cap.
   */
  async delete(reply: FastifyReply, ctx: HeldSessionContext) {
    if (ctx.sessionId === undefined) throw new ProxyError('session_required');
    this.#session(ctx.sessionId, ctx, endableBy);
    await this.#deps.sessions.delete(ctx.sessionId);
    return reply.code(200).send();
  }

  #session(id: string, ctx: HeldSessionContext, serves = serveCaller): HeldSession {
    const session = this.#deps.sessions.get(id, ctx.ownerId);
    if (!session || session.closed || !serves(session, ctx.targetKey, ctx.target))
      throw new ProxyError('session_not_found');
    return session;
  }

  /**
   * The session, its credential read again first (review6 OAUTH-1). A session whose sign-in the
   * user ended is gone: 404, Streamable HTTP's signal to initialize again (a 401 would tell the
   * client to sign in to the proxy), with `upstream_auth_ended` saying why.
   */
  async #renewed(id: string, ctx: HeldSessionContext): Promise<HeldSession> {
    const session = this.#session(id, ctx);
    try {
      await session.renew();
    } catch (error) {
      if (!(error instanceof ProxyError) || error.code !== 'upstream_auth_ended') throw error;
      throw new ProxyError('upstream_auth_ended', undefined, { status: 404, cause: error });
    }
    return session;
  }

  async #answerAsJson(reply: FastifyReply, answers: Answers, requests: JsonRpcRequest[]) {
    const { session, filter } = answers;
    const signal = callerSignal(reply);
    const options = { timeoutMs: this.#deps.timeoutMs, signal };
    return Promise.all(
      requests.map((message) =>
        sentOnceMore(session, () => session.call(message, options, filter)).catch((error: unknown) =>
          failureAnswer(answers, message, error),
        ),
      ),
    );
  }

  async #answerAsStream(
    request: FastifyRequest,
    reply: FastifyReply,
    answers: Answers,
    requests: JsonRpcRequest[],
  ) {
    const { session, filter } = answers;
    const writer = new EventStreamWriter(this.#deps.stream);
    writer.comment('stream open');
    const waiting = new Set(requests.map((m) => m.id));
    // An answer stream may run long (progress, sampling) but not silently forever.
    const idle = idleWatch(this.#deps.timeoutMs, () => {
      for (const id of waiting) writer.write(toJsonRpcError(new ProxyError('upstream_timeout'), id));
      session.abandon(sink, 'timeout');
      writer.close();
    });
    const sink: MessageSink = {
      deliver: (message) => {
        if (!writer.write(message)) return false;
        idle.arm();
        if ('id' in message && !('method' in message) && message.id !== null && waiting.delete(message.id)) {
          request.audit?.answer(message);
          if (waiting.size === 0) writer.close();
        }
        return true;
      },
      end: () => writer.close(),
    };
    writer.onClose(() => {
      idle.stop();
      // Closing the stream before the answers arrived abandons them: cancel upstream.
      if (waiting.size > 0) session.abandon(sink);
    });
    if (closeWhenCallerLeaves(reply, writer)) {
      // The caller left while this POST waited (its batch's notifications going upstream):
      // its requests are never sent, so nothing is left running upstream.
      return sendEventStream(reply, writer);
    }
    idle.arm();
    // Not awaited: a transport whose send lasts as long as its answer stream (an HTTP upstream)
    // must not hold this stream's headers, progress or server requests back until the end.
    // request() registers each route before its first await, so the order is kept.
    for (const message of requests) {
      sentOnceMore(session, () => session.request(message, sink, filter))
        .catch((error: unknown) => failureAnswer(answers, message, error))
        .then((answer) => answer && sink.deliver(answer))
        .catch(() => {});
    }
    return sendEventStream(reply, writer);
  }
}

/** Looks at an error answer first and may replace it (the OAuth broker's sign-in). */
export type Intercept = (
  message: JsonRpcRequest,
  answer: JsonRpcResponse,
) => Promise<JsonRpcResponse | undefined>;

/** How one POST's requests are answered: the session, the caller's tool grant, the interceptor. */
interface Answers {
  readonly session: HeldSession;
  readonly filter: ToolFilter | undefined;
  readonly intercept: Intercept | undefined;
}

/**
 * Runs `send`, and once more when the upstream refused the broker's token and a refreshed one
 * took its place (issue 18, held-signin): an HTTP+SSE upstream reads the token at each POST, so
 * the session opened with the refused one goes on with the new one. The token `send` goes with is
 * read as it goes: a refusal refreshes that one, not one another refusal put in its place.
 */
async function sentOnceMore<T>(session: HeldSession, send: () => Promise<T>): Promise<T> {
  const sentWith = session.bearer;
  try {
    return await send();
  } catch (error) {
    if (!(await session.refused(error, sentWith))) throw error;
    return send();
  }
}

/** The answer to `message` that failed with `error`: the interceptor's when it gives one. */
async function failureAnswer(answers: Answers, message: JsonRpcRequest, error: unknown) {
  const answer = toJsonRpcError(error, message.id);
  // A sign-in that cannot start (discovery failed) answers its own error.
  const replaced = await answers
    .intercept?.(message, answer)
    .catch((failure: unknown) => toJsonRpcError(failure, message.id));
  return replaced ?? answer;
}

/**
 * Closes `writer` when the caller disconnects, or at once if it already has (the handler may
 * have awaited upstream work first). Returns true in that last case.
 */
function closeWhenCallerLeaves(reply: FastifyReply, writer: EventStreamWriter): boolean {
  // What callerSignal() tells, without an AbortController and an event listener per answer: a
  // response that closed unfinished is a caller gone ('close' after a finished response is the
  // stream's own end, and closing the writer again does nothing).
  const response = reply.raw;
  if (response.destroyed && !response.writableFinished) {
    writer.close();
    return true;
  }
  response.once('close', () => writer.close());
  return false;
}
