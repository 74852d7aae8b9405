/**
 * @module surfaces/mcp/virtual-handler
 * `/servers/{name}/mcp` when `name` is a virtual server (issue 20): the proxy is the MCP server,
 * answering each POST with JSON, or with an event stream once a member sends something for the
 * request first (progress, a log message, a server request, whose answer the client POSTs).
 * A 2025-era client gets an `Mcp-Session-Id` at `initialize` (sealed, nothing kept per session:
 * virtual/client-sessions.ts; what the proxy holds is per principal, virtual/member-sessions.ts),
 * sends it on every later request, and ends it with DELETE. A GET stream of the session carries
 * what members send outside any request. A 2026-07-28 client is served as any client of
 * a session-era server is: through a pooled session (virtual/virtual-session.ts), so a member's
 * server request becomes an input round and `subscriptions/listen` carries list changes.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { clientEraOf, MODERN_VERSION, negotiatedSessionVersion } from '../../eras/classify.ts';
import { ProxyError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import {
  type EventStreamOptions,
  EventStreamWriter,
  sendEventStream,
} from '../../http/event-stream-writer.ts';
import { acceptsEventStream } from '../../http/inbound-checks.ts';
import type { FollowPrincipal } from '../../identity/followed-principal.ts';
import type { Principal } from '../../identity/principal.ts';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../jsonrpc.ts';
import { holdInFlightSlot } from '../../limits/in-flight-hooks.ts';
import { onResponseClosed } from '../../response-closed.ts';
import { headerValue } from '../../upstream/http.ts';
import { checkHeaderAgreement, declaredVersion } from '../../upstream/request-metadata.ts';
import type { LoggedSession } from '../../virtual/answer-events.ts';
import type { ClientSession, ClientSessions } from '../../virtual/client-sessions.ts';
import type { VirtualChannel } from '../../virtual/member-requests.ts';
import type { EndLook } from '../../virtual/session-ends.ts';
import { SearchBudget } from '../../virtual/tool-search.ts';
import type { VirtualServers } from '../../virtual/virtual-servers.ts';
import type { VirtualPoolTarget } from '../../virtual/virtual-session.ts';
import type { PooledSessionHandler } from './pooled-session-handler.ts';
import { ResumableAnswer, type ResumableAnswers, resumeAnswer } from './resumable-answer.ts';

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
    if (request.method === 'DELETE' && streams.sessions !== undefined)
      return endSession(virtual, { ...streams, sessions: streams.sessions }, exchange, request, reply);
    if (request.method !== 'GET') throw new ProxyError('method_not_allowed');
    const session = await sessionOf(streams.sessions, exchange, request, reply);
    const lastEventId = headerValue(request.headers, 'last-event-id');
    if (session !== undefined && lastEventId !== undefined && streams.answers !== undefined) {
      if (!acceptsEventStream(request))
        throw new ProxyError('not_acceptable', 'Accept must include text/event-stream.');
      const logged = { ...session, principalKey: exchange.identity.principalKey };
      // The stream ends with its session (DELETE, here or on another instance: review10 RESUME-5).
      const held = virtual.holdSession(logged.principalKey, session.key, () =>
        endedSession(streams, session),
      );
      onResponseClosed(reply.raw, held.release);
      const ends = AbortSignal.any([streams.shutdown, held.signal]);
      return resumeAnswer(reply, streams.stream, streams.answers, logged, lastEventId, ends);
    }
    return openStream(virtual, exchange, request, reply, streams, session);
  }
  const protocolVersion = headerValue(request.headers, 'mcp-protocol-version');
  // A 2026-07-28 request's headers must agree with its body, as on every other route.
  for (const message of exchange.messages) checkHeaderAgreement(request.headers, message);
  // A version the proxy does not speak is refused by the virtual server itself (with every
  // version it does speak, both eras).
  const modern = exchange.messages.some(
    (message) =>
      clientEraOf(message, protocolVersion) === 'modern' &&
      (declaredVersion(message) ?? protocolVersion) === MODERN_VERSION,
  );
  if (modern && streams.modern !== undefined) {
    const { identity, name } = exchange;
    // The session outlives this request: its grants follow reloads.
    const caller = streams.follow(identity, request.recheckCredential);
    const target: VirtualPoolTarget = { kind: 'virtual', name, caller };
    // The credential is part of the key (review10 GRANTS-1, GRANTS-2): the session answers with
    // the principal of the token that opened it, verified again after each reload, so it never
    // answers another token of the subject (other claims, or one its expired predecessor
    // opened); its grants too, so a principal whose grants changed gets a session of its own.
    const grants = createHash('sha256')
      .update(JSON.stringify([identity.credentialId ?? null, identity.grants]))
      .digest('base64url');
    const ctx = {
      ownerId: identity.principalKey,
      rateClass: identity.grants.rateClass,
      target,
      targetKey: `virtual:${name}:${grants}`,
    };
    return streams.modern.post(
      request,
      reply,
      { messages: [...exchange.messages], batch: exchange.batch },
      ctx,
    );
  }
  // A 2025-era client's session: a new one at initialize, else the one it names.
  let session: ClientSession | undefined;
  const initialize = exchange.messages.find(
    (message): message is JsonRpcRequest => 'method' in message && message.method === 'initialize',
  );
  if (initialize !== undefined && streams.sessions !== undefined) {
    const version = negotiatedSessionVersion(initialize.params?.protocolVersion);
    const issued = streams.sessions.issue(exchange.identity.principalKey, exchange.name, version);
    reply.header('mcp-session-id', issued);
  } else if (exchange.messages.some((message) => clientEraOf(message, protocolVersion) === 'session'))
    session = await sessionOf(streams.sessions, exchange, request, reply);
  const logged = session && { ...session, principalKey: exchange.identity.principalKey };
  const answerStream = answerStreamOf(exchange.messages, request, reply, streams, logged);
  const { messages } = exchange;
  let answers: JsonRpcResponse[];
  if (answerStream instanceof ResumableAnswer && logged !== undefined) {
    // A resumable answer outlives its connection (disconnection is not cancellation: MCP
    // 2025-11-25); the client cancels it with notifications/cancelled, or ends its session. It
    // keeps its in-flight slot until it is over (review10 RESUME-3, RESUME-5).
    const held = virtual.holdSession(logged.principalKey, logged.key, () => endedSession(streams, logged));
    const signal = AbortSignal.any([streams.shutdown, held.signal]);
    const handling = handleAll(
      virtual,
      exchange,
      { messages, session: logged.key, protocolVersion, signal },
      answerStream,
    );
    holdInFlightSlot(request, handling);
    answers = await handling.finally(held.release);
  } else {
    const signal = callerSignal(reply);
    answers = await handleAll(
      virtual,
      exchange,
      { messages, session: session?.key, protocolVersion, signal },
      answerStream,
    );
  }
  if (answers.length > 0) request.audit?.answer(answers[0]);
  if (answerStream?.started) return answerStream.end(answers);
  if (answers.length === 0) return reply.code(202).send();
  return reply
    .code(200)
    .type('application/json')
    .send(exchange.batch ? answers : answers[0]);
}

/** The messages of one POST, and how they are handled: their session, version and signal. */
interface Handling {
  readonly messages: readonly JsonRpcMessage[];
  readonly session: string | undefined;
  readonly protocolVersion: string | undefined;
  readonly signal: AbortSignal;
}

/** Handles the POSTed messages one after the other: the answers to its requests. */
async function handleAll(
  virtual: VirtualServers,
  exchange: VirtualExchange,
  { messages, ...handling }: Handling,
  channel: VirtualChannel | undefined,
): Promise<JsonRpcResponse[]> {
  const answers: JsonRpcResponse[] = [];
  const searches = new SearchBudget();
  for (const message of messages) {
    // A client's answer to a member's server request, which it got on an answer stream.
    if (!('method' in message)) {
      virtual.answer(exchange.name, exchange.identity, message);
      continue;
    }
    const answer = await virtual.handle(exchange.name, {
      caller: exchange.identity,
      message,
      ...handling,
      channel,
      searches,
    });
    if (answer !== undefined) answers.push(answer);
  }
  return answers;
}

/**
 * The answer stream of a POST, if it may have one: resumable for a `tools/call` of a session that
 * negotiated 2025-11-25 or later (resumability and SSE polling came with it), else one that
 * starts at the first message a member sends for the request (progress, a log message, a
 * server request), the answer staying JSON without any.
 */
function answerStreamOf(
  messages: readonly JsonRpcMessage[],
  request: FastifyRequest,
  reply: FastifyReply,
  streams: VirtualStreamOptions,
  session: (ClientSession & LoggedSession) | undefined,
): ResumableAnswer | LazyAnswerStream | undefined {
  if (!acceptsEventStream(request)) return undefined;
  const calls = messages.some((message) => 'method' in message && message.method === 'tools/call');
  if (calls && streams.answers !== undefined && (session?.version ?? '') >= RESUMABLE_SINCE)
    return new ResumableAnswer(reply, streams.stream, streams.answers, session as LoggedSession);
  return new LazyAnswerStream(reply, streams.stream);
}

/** The first session-era version whose clients resume streams (priming events, SSE polling). */
const RESUMABLE_SINCE = '2025-11-25';

/** What the endpoint's own event streams need, and what serves its 2026-07-28 clients. */
export interface VirtualStreamOptions {
  readonly stream: EventStreamOptions;
  /** Resumable answer streams of 2025-era sessions; none: answers are not resumable. */
  readonly answers?: ResumableAnswers | undefined;
  readonly modern?: PooledSessionHandler<VirtualPoolTarget> | undefined;
  /** Aborted when the proxy shuts down: a GET stream never ends by itself. */
  readonly shutdown: AbortSignal;
  /** The session ids of 2025-era clients; none: the endpoint issues none (stateless). */
  readonly sessions?: ClientSessions | undefined;
  /** What stays open (a GET stream, a pooled session) follows its principal's grants of now. */
  readonly follow: FollowPrincipal;
}

/**
 * The session a 2025-era request names (its key), when the endpoint issues sessions: a request
 * without one is refused `session_required` (400), an unknown or ended one `session_not_found`
 * (404), as the Streamable HTTP transport asks of a server that issues session ids. An id sealed
 * under a previous secret is handed back re-sealed under the current one (`Mcp-Session-Id`).
 */
async function sessionOf(
  sessions: ClientSessions | undefined,
  exchange: VirtualExchange,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<ClientSession | undefined> {
  if (sessions === undefined) return undefined;
  const sealed = headerValue(request.headers, 'mcp-session-id');
  if (sealed === undefined) throw new ProxyError('session_required');
  const session = await sessions.open(sealed, exchange.identity.principalKey, exchange.name);
  if (session === undefined) throw new ProxyError('session_not_found');
  if (session.resealedId !== undefined) reply.header('mcp-session-id', session.resealedId);
  return session;
}

/** Whether `session` was ended since it was opened (its mark in the store). */
async function endedSession(streams: VirtualStreamOptions, session: ClientSession): Promise<boolean> {
  return (await streams.sessions?.isEnded(session.key)) === true;
}

/**
 * DELETE: ends the session it names (204), its GET streams on every instance, and the events it
 * kept for resumption; 404 when it was not live.
 */
async function endSession(
  virtual: VirtualServers,
  { sessions, answers }: VirtualStreamOptions & { readonly sessions: ClientSessions },
  exchange: VirtualExchange,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const session = await sessionOf(sessions, exchange, request, reply);
  const sealed = headerValue(request.headers, 'mcp-session-id') as string;
  if (!(await sessions.end(sealed, exchange.identity.principalKey, exchange.name)))
    throw new ProxyError('session_not_found');
  if (session !== undefined) {
    virtual.endSession(exchange.identity.principalKey, session.key);
    await answers?.events.forget({ ...session, principalKey: exchange.identity.principalKey });
  }
  return reply.code(204).send();
}

/**
 * GET: the client's stream of what the members it sees send outside its requests (list changes,
 * log messages, resource updates, server requests), until it leaves or the proxy stops.
 */
async function openStream(
  virtual: VirtualServers,
  exchange: VirtualExchange,
  request: FastifyRequest,
  reply: FastifyReply,
  options: VirtualStreamOptions,
  session: ClientSession | undefined,
): Promise<FastifyReply> {
  if (!acceptsEventStream(request))
    throw new ProxyError('not_acceptable', 'Accept must include text/event-stream.');
  const writer = new EventStreamWriter(options.stream);
  const { close, ready } = virtual.openStream(
    exchange.name,
    options.follow(exchange.identity, request.recheckCredential),
    { send: (message) => writer.write(message), asks: true, close: () => writer.close() },
    session?.key,
  );
  writer.onClose(close);
  let looked: Promise<EndLook> = Promise.resolve('live');
  let ended = () => false;
  if (session !== undefined) {
    // An end told before this instance listened (a subscription slower than `ready`'s wait
    // included) is looked up in the store once it listens: the stream ends then (review13 GAPS-4).
    const held = virtual.holdSession(exchange.identity.principalKey, session.key, () =>
      endedSession(options, session),
    );
    held.signal.addEventListener('abort', () => writer.close(), { once: true });
    writer.onClose(held.release);
    looked = held.looked;
    ended = () => held.signal.aborted;
  }
  const end = () => writer.close();
  options.shutdown.addEventListener('abort', end, { once: true });
  writer.onClose(() => options.shutdown.removeEventListener('abort', end));
  reply.raw.once('close', end);
  // Clients wait for the GET's headers before going on: send them once the stream hears the
  // other instances too (a member session there may be about to send), not with the first event.
  await ready;
  // A DELETE on another instance before this one listened for it went unheard: the hold looks
  // the session's end mark up once listening (one store read), and its end is a 404 still; a
  // store that could not say is a 503, never an open stream (review16 GAPS-2).
  const outcome = await looked;
  if (ended() || outcome !== 'live') {
    writer.close();
    throw new ProxyError(ended() || outcome === 'ended' ? 'session_not_found' : 'store_unavailable');
  }
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
