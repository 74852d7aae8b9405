/**
 * @module mcp/modern-bridge-handler
 * `/mcp` for a modern (2026-07-28) client whose server speaks only the session era (or is
 * reached over stdio, WebSocket or legacy SSE and found to): each POST is one request, answered
 * as JSON or as an event stream (progress, then the result), through an upstream session the
 * proxy pools for the caller's token and client envelope. Closing the stream cancels the
 * request upstream; a `subscriptions/listen` stream stays open until the client closes it.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError, toErrorReply } from '../errors.ts';
import { isRequest, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts';
import { META } from '../protocol/eras.ts';
import { callerSignal } from '../routes/caller-signal.ts';
import type { MessageSink } from '../sessions/bridge-session.ts';
import type { ModernSessionPool, PoolContext, PooledExchange } from '../sessions/modern-pool.ts';
import { type EventStreamOptions, EventStreamWriter } from './event-stream-writer.ts';
import { acceptsEventStream, acceptsJson } from './inbound-checks.ts';

/** Collaborators and limits. */
export interface ModernBridgeDeps {
  readonly pool: ModernSessionPool;
  readonly timeoutMs: number;
  readonly stream: EventStreamOptions;
}

/** Serves modern requests bound for session-era upstreams. */
export class ModernBridge {
  readonly #deps: ModernBridgeDeps;

  constructor(deps: ModernBridgeDeps) {
    this.#deps = deps;
  }

  /** POST: one modern request (or notifications, which need no answer). */
  async post(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: { readonly messages: JsonRpcMessage[]; readonly batch: boolean },
    ctx: PoolContext,
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
    const session = await this.#deps.pool.session(ctx, message);
    const exchange = this.#deps.pool.exchange(session, message);
    if (acceptsEventStream(request)) return this.#answerAsStream(reply, exchange, message);
    if (!acceptsJson(request)) throw new ProxyError('not_acceptable');
    const response = await exchange
      .call({ timeoutMs: this.#deps.timeoutMs, signal: callerSignal(reply) })
      .catch((error: unknown) => toErrorReply(error, message.id).body as JsonRpcResponse);
    return reply.code(200).type('application/json').send(response);
  }

  async #answerAsStream(reply: FastifyReply, exchange: PooledExchange, message: JsonRpcRequest) {
    const writer = new EventStreamWriter(this.#deps.stream);
    writer.comment('stream open');
    // A listen stream is meant to stay quiet for long; any other answer may not go silent forever.
    const watchIdle = message.method !== 'subscriptions/listen';
    let answered = false;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      if (!watchIdle) return;
      clearTimeout(idle);
      idle = setTimeout(() => {
        writer.write(toErrorReply(new ProxyError('upstream_timeout'), message.id).body as JsonRpcResponse);
        exchange.abandon();
        writer.close();
      }, this.#deps.timeoutMs);
      idle.unref();
    };
    const sink: MessageSink = {
      deliver: (incoming) => {
        // A listen stream carries only its own subscription's notifications (and its end).
        if (!watchIdle && 'method' in incoming && !belongsTo(incoming, message.id)) return false;
        if (!writer.write(incoming)) return false;
        armIdle();
        if ('id' in incoming && !('method' in incoming) && incoming.id === message.id) {
          answered = true;
          writer.close();
        }
        return true;
      },
      end: () => writer.close(),
    };
    writer.onClose(() => {
      clearTimeout(idle);
      // Closing the stream before the answer is the modern era's cancellation.
      if (!answered) exchange.abandon();
    });
    reply.raw.once('close', () => writer.close());
    armIdle();
    await exchange.start(sink).catch((error: unknown) => {
      sink.deliver(toErrorReply(error, message.id).body as JsonRpcResponse);
    });
    return reply
      .code(200)
      .header('content-type', 'text/event-stream')
      .header('cache-control', 'no-cache, no-transform')
      .header('x-accel-buffering', 'no')
      .send(writer.stream);
  }
}

/** True when a notification was stamped for the `subscriptions/listen` request `id`. */
function belongsTo(message: JsonRpcMessage, id: JsonRpcRequest['id']): boolean {
  const meta =
    'params' in message ? (message.params?._meta as Record<string, unknown> | undefined) : undefined;
  return meta?.[META.subscriptionId] === id;
}
