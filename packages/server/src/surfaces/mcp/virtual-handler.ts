/**
 * @module surfaces/mcp/virtual-handler
 * `/servers/{name}/mcp` when `name` is a virtual server (issue 20): the proxy is the MCP server,
 * statelessly (no `Mcp-Session-Id`: what it holds is per principal, in virtual/member-sessions.ts),
 * answering each POST with JSON, or with an event stream once a member sends something for the
 * request first (progress, a log message, a server request, whose answer the client POSTs).
 * A GET stream carries what members send outside any request; there is no session to DELETE
 * (405, as the Streamable HTTP transport allows).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import {
  type EventStreamOptions,
  EventStreamWriter,
  sendEventStream,
} from '../../http/event-stream-writer.ts';
import { acceptsEventStream } from '../../http/inbound-checks.ts';
import type { Principal } from '../../identity/principal.ts';
import type { JsonRpcMessage, JsonRpcResponse } from '../../jsonrpc.ts';
import { headerValue } from '../../upstream/http.ts';
import { checkHeaderAgreement } from '../../upstream/request-metadata.ts';
import type { VirtualChannel } from '../../virtual/member-requests.ts';
import { SearchBudget } from '../../virtual/tool-search.ts';
import type { VirtualServers } from '../../virtual/virtual-servers.ts';

/** One request to a virtual server's Streamable HTTP endpoint, its body parsed (POST) or not. */
export interface VirtualExchange {
  readonly name: string;
  readonly identity: Principal;
  /** The POSTed messages (requests as notifications already dropped); undefined for GET/DELETE. */
  readonly messages: readonly JsonRpcMessage[] | undefined;
  readonly batch: boolean;
}

/** Answers a request to a virtual server's endpoint. */
export async function serveVirtual(
  virtual: VirtualServers,
  exchange: VirtualExchange,
  request: FastifyRequest,
  reply: FastifyReply,
  streams: VirtualStreamOptions,
): Promise<FastifyReply> {
  virtual.checkReach(exchange.name, exchange.identity.grants);
  if (exchange.messages === undefined) {
    if (request.method !== 'GET') throw new ProxyError('method_not_allowed');
    return openStream(virtual, exchange, request, reply, streams);
  }
  const signal = callerSignal(reply);
  const protocolVersion = headerValue(request.headers, 'mcp-protocol-version');
  // A 2026-07-28 request's headers must agree with its body, as on every other route.
  for (const message of exchange.messages) checkHeaderAgreement(request.headers, message);
  // What members send for a request (progress, log messages, server requests) needs a stream:
  // the answer becomes one at the first such message, else it stays JSON.
  const answerStream = acceptsEventStream(request) ? new LazyAnswerStream(reply, streams.stream) : undefined;
  const answers: JsonRpcResponse[] = [];
  const searches = new SearchBudget();
  for (const message of exchange.messages) {
    // A client's answer to a member's server request, which it got on an answer stream.
    if (!('method' in message)) {
      virtual.answer(exchange.name, exchange.identity, message);
      continue;
    }
    const answer = await virtual.handle(exchange.name, {
      caller: exchange.identity,
      message,
      protocolVersion,
      signal,
      channel: answerStream,
      searches,
    });
    if (answer !== undefined) answers.push(answer);
  }
  if (answers.length > 0) request.audit?.answer(answers[0]);
  if (answerStream?.started) return answerStream.end(answers);
  if (answers.length === 0) return reply.code(202).send();
  return reply
    .code(200)
    .type('application/json')
    .send(exchange.batch ? answers : answers[0]);
}

/** What the endpoint's own event streams need. */
export interface VirtualStreamOptions {
  readonly stream: EventStreamOptions;
  /** Aborted when the proxy shuts down: a GET stream never ends by itself. */
  readonly shutdown: AbortSignal;
}

/**
 * GET: the client's stream of what the members it sees send outside its requests (list changes,
 * log messages, resource updates, server requests), until it leaves or the proxy stops.
 */
function openStream(
  virtual: VirtualServers,
  exchange: VirtualExchange,
  request: FastifyRequest,
  reply: FastifyReply,
  options: VirtualStreamOptions,
): FastifyReply {
  if (!acceptsEventStream(request))
    throw new ProxyError('not_acceptable', 'Accept must include text/event-stream.');
  const writer = new EventStreamWriter(options.stream);
  const close = virtual.openStream(exchange.name, exchange.identity, {
    send: (message) => writer.write(message),
    asks: true,
  });
  writer.onClose(close);
  const end = () => writer.close();
  options.shutdown.addEventListener('abort', end, { once: true });
  writer.onClose(() => options.shutdown.removeEventListener('abort', end));
  reply.raw.once('close', end);
  // Clients wait for the GET's headers before going on: send them now, not with the first event.
  writer.comment('stream open');
  return sendEventStream(reply, writer);
}

/**
 * An answer that turns into an event stream when a member sends something before it: the
 * messages, then the answers, then the end. Closing it before the end is the caller leaving.
 */
class LazyAnswerStream implements VirtualChannel {
  readonly asks = true;
  readonly #reply: FastifyReply;
  readonly #options: EventStreamOptions;
  #writer: EventStreamWriter | undefined;

  constructor(reply: FastifyReply, options: EventStreamOptions) {
    this.#reply = reply;
    this.#options = options;
  }

  /** True once the answer is an event stream. */
  get started(): boolean {
    return this.#writer !== undefined;
  }

  send(message: JsonRpcMessage): boolean {
    if (this.#writer === undefined) {
      if (this.#reply.sent || this.#reply.raw.destroyed) return false;
      const writer = new EventStreamWriter(this.#options);
      this.#writer = writer;
      // The caller leaving ends the stream (its signal already cancels the member's request).
      this.#reply.raw.once('close', () => writer.close());
      sendEventStream(this.#reply, writer);
    }
    return this.#writer.write(message);
  }

  /** Writes the answers and ends the stream. */
  end(answers: readonly JsonRpcResponse[]): FastifyReply {
    for (const answer of answers) this.#writer?.write(answer);
    this.#writer?.close();
    return this.#reply;
  }
}
