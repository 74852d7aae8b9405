/**
 * @module surfaces/mcp/endpoint
 * The proxy's spec-compliant Streamable HTTP endpoint (`/mcp`, `/servers/{name}/mcp`), so any
 * MCP client can use it unchanged. It executes the route the dispatch plan (dispatch/plan.ts)
 * gives each request: Streamable HTTP upstreams are passed through statelessly; every other
 * upstream is bridged through a proxy-held session; a modern client of a session-era upstream
 * goes through a pooled one.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { linkAbort } from '../../abort.ts';
import type { OAuthBroker } from '../../credentials/broker.ts';
import {
  type DispatchPlanner,
  mayFallBack,
  type PassThroughRoute,
  type Route,
  sessionRefOf,
} from '../../dispatch/plan.ts';
import { TargetResolver } from '../../dispatch/targets.ts';
import { parseJson } from '../../eras/classify.ts';
import { ProxyError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import type { EventStreamOptions } from '../../http/event-stream-writer.ts';
import { checkHostAndOrigin, checkProtocolVersion, type InboundPolicy } from '../../http/inbound-checks.ts';
import { serverLabel, targetLabel } from '../../identity/audit-trail.ts';
import type { FollowPrincipal } from '../../identity/followed-principal.ts';
import { recordingReach } from '../../identity/live-requests.ts';
import { isRequest, type JsonRpcMessage, type JsonRpcResponse, type MessageBatch } from '../../jsonrpc.ts';
import { type ToolFilter, toolFilterFor } from '../../policy/tool-filter.ts';
import type { OpenedSessionId, SessionIdSealer } from '../../sessions/session-id-sealer.ts';
import type { UpstreamHttp, UpstreamResponse } from '../../upstream/http.ts';
import { callOnce } from '../../upstream/one-shot.ts';
import { checkHeaderAgreement } from '../../upstream/request-metadata.ts';
import type { ClientSessions } from '../../virtual/client-sessions.ts';
import { virtualKey } from '../../virtual/virtual-key.ts';
import type { VirtualServers } from '../../virtual/virtual-servers.ts';
import type { VirtualPoolTarget } from '../../virtual/virtual-session.ts';
import { BrokeredSignIn } from './brokered-sign-in.ts';
import type { HeldSessionContext, HeldSessionHandler } from './held-session-handler.ts';
import { eraOf, header, parseBody, resolveTarget, withoutRequestsAsNotifications } from './inbound.ts';
import type { PassThrough, PassThroughRequest } from './passthrough.ts';
import type { PooledSessionHandler } from './pooled-session-handler.ts';
import type { ResumableAnswers } from './resumable-answer.ts';
import type { SignInRounds } from './sign-in-input.ts';
import { serveVirtual } from './virtual-handler.ts';

/** Collaborators of the endpoint. */
export interface McpEndpointDeps {
  readonly targets: TargetResolver;
  readonly passThrough: PassThrough;
  readonly bridge: HeldSessionHandler;
  /** Modern clients of session-era upstreams. */
  readonly modern: PooledSessionHandler;
  /** Decides each message's route, and what a first answer changes. */
  readonly planner: DispatchPlanner;
  readonly sealer: SessionIdSealer;
  readonly http: UpstreamHttp;
  readonly inbound: InboundPolicy;
  readonly timeoutMs: number;
  /** Aborted when the proxy shuts down: relayed GET streams end then (they never end alone). */
  readonly shutdown: AbortSignal;
  /**
   * The upstream OAuth broker, once loaded (undefined: not loaded, so off): signs the principal
   * in when the caller brings no credential.
   */
  readonly broker?: (() => OAuthBroker | undefined) | undefined;
  /** How a 2026-07-28 client is asked to sign in (an input request), and its retry resumed. */
  readonly signIn?: SignInRounds | undefined;
  /** Virtual servers (issue 20): `/servers/{name}/mcp` with a virtual server's name. */
  readonly virtual?: VirtualServers | undefined;
  /** Serves virtual servers' 2026-07-28 clients (through pooled sessions); given with `virtual`. */
  readonly virtualModern?: PooledSessionHandler<VirtualPoolTarget> | undefined;
  /** The session ids of virtual servers' 2025-era clients; given with `virtual`. */
  readonly virtualSessions?: ClientSessions | undefined;
  /** Resumable answer streams of virtual servers' 2025-era sessions (resumable-answer.ts). */
  readonly virtualAnswers?: ResumableAnswers | undefined;
  /** Limits of the event streams the endpoint answers with itself (a virtual server's). */
  readonly stream: EventStreamOptions;
  /** A virtual server's GET streams and sessions follow their principal's grants of now. */
  readonly follow: FollowPrincipal;
}

/** Serves the Streamable HTTP endpoint. */
export class McpEndpoint {
  readonly #deps: McpEndpointDeps;
  /** The broker's tokens, and the sign-ins asked for when the upstream refuses them. */
  readonly #signIns: BrokeredSignIn;

  constructor(deps: McpEndpointDeps) {
    this.#deps = deps;
    this.#signIns = new BrokeredSignIn({ broker: deps.broker, signIn: deps.signIn });
  }

  /** Handles POST, GET or DELETE on `/mcp` (serverName absent) or `/servers/{name}/mcp`. */
  async handle(request: FastifyRequest, reply: FastifyReply, serverName?: string): Promise<FastifyReply> {
    checkHostAndOrigin(request, this.#deps.inbound);
    const identity = request.identity;
    if (!identity) throw new ProxyError('unauthorized');
    const parsed = request.method === 'POST' ? parseBody(request.body) : undefined;
    request.mcpMethod = parsed?.messages.map((m) => ('method' in m ? m.method : 'response')).join(',');
    if (request.audit && parsed) {
      // Requests only: a notification gets no line (one under a request's method is dropped below).
      for (const message of parsed.messages) request.audit.add(message);
      const url = header(request, 'x-mcp-server-url');
      request.audit.server(serverName ?? (url === undefined ? null : serverLabel({ url })));
    }
    const virtual = this.#deps.virtual;
    if (serverName !== undefined && virtual?.has(serverName)) {
      // Named before the first await, so a reload that takes the virtual server away ends this
      // request too (LiveRequests judges a request without a target key as reaching nothing yet).
      request.targetKey = virtualKey(serverName);
      const inbound = parsed && withoutRequestsAsNotifications(parsed, request);
      const messages = parsed && (inbound?.messages ?? []);
      const exchange = { name: serverName, identity, messages, batch: parsed?.batch ?? false };
      const { stream, shutdown, virtualModern, virtualSessions, virtualAnswers, follow } = this.#deps;
      const options = {
        stream,
        shutdown,
        modern: virtualModern,
        sessions: virtualSessions,
        answers: virtualAnswers,
        follow,
      };
      return serveVirtual(virtual, exchange, request, reply, options);
    }
    if (parsed) {
      const resumed = this.#signIns.resume(request, reply, parsed, identity.principalKey);
      if (resumed) return resumed;
    }

    const resolved = await resolveTarget(this.#deps.targets, request, serverName, identity);
    const target = await this.#signIns.withBrokeredToken(request, resolved, identity.principalKey);
    if (target === undefined) return this.#signIns.authRequired(request, reply, parsed, resolved, undefined);
    request.targetKey = TargetResolver.key(target);
    request.audit?.target(targetLabel(target), target.tools);
    const inbound = parsed && withoutRequestsAsNotifications(parsed, request);
    if (parsed && !inbound) return reply.code(202).send();
    request.targetHost = target.kind === 'stdio' ? `stdio:${target.name}` : target.url.host;
    const sessionId = header(request, 'mcp-session-id');
    const era = inbound && eraOf(request, inbound);
    if (sessionId === undefined && inbound && era === 'modern') {
      // Refuse header/body disagreement here rather than spend an upstream call (or probe) on it.
      for (const message of inbound.messages) checkHeaderAgreement(request.headers, message);
    }
    const route = await this.#deps.planner.plan(
      {
        principalKey: identity.principalKey,
        rateClass: identity.grants.rateClass,
        surface: 'mcp',
        era,
        opens: inbound?.messages.some((m) => 'method' in m && m.method === 'initialize') ?? false,
        session: sessionRefOf(sessionId),
      },
      target,
      () => callerSignal(reply),
    );
    try {
      return await this.#run(request, reply, inbound, route);
    } catch (error) {
      // A held or bridged route opens its upstream itself: its 401 arrives thrown.
      return this.#signIns.afterThrown(request, reply, inbound, resolved, error);
    }
  }

  /** Executes a route of the plan. */
  async #run(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch | undefined,
    route: Route,
  ): Promise<FastifyReply> {
    switch (route.kind) {
      case 'refused':
        throw new ProxyError(route.code);
      case 'pooled':
        // Only a modern POST is pooled: it has a body.
        return this.#deps.modern.post(request, reply, inbound as MessageBatch, route, (message, answer) =>
          this.#signIns.refusedInSession(request, reply, message, answer),
        );
      case 'held':
      case 'open-held':
      case 'one-shot':
        return this.#bridged(request, reply, inbound, {
          ownerId: route.ownerId,
          rateClass: route.rateClass,
          target: route.target,
          targetKey: route.targetKey,
          sessionId: route.kind === 'held' ? route.sessionId : undefined,
        });
      case 'pass-through':
        return this.#passThrough(request, reply, inbound, route);
    }
  }

  /** Stateless to a Streamable HTTP upstream; the first answer may still send it another way. */
  async #passThrough(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch | undefined,
    route: PassThroughRoute,
  ): Promise<FastifyReply> {
    const { target } = route;
    let opened: OpenedSessionId | undefined;
    if (route.sealedId !== undefined) {
      // Only ids this proxy sealed for this principal and target: never a raw upstream id.
      opened = this.#deps.sealer.open(route.sealedId, route.ownerId, route.targetKey);
      if (opened === undefined) throw new ProxyError('session_not_found');
    }
    // Refuse header/body disagreement here rather than spend an upstream call on it.
    for (const message of inbound?.messages ?? []) checkHeaderAgreement(request.headers, message);
    const exchange: PassThroughRequest = {
      url: target.url,
      name: target.name,
      bearerToken: target.bearerToken,
      mayReach: target.mayReach,
      upstreamSessionId: opened?.upstreamId,
      sealedSessionId: opened?.sealedId,
      resealed: opened?.resealed ?? false,
      ownerId: route.ownerId,
      targetKey: route.targetKey,
      body: inbound ? JSON.stringify(inbound.batch ? inbound.messages : inbound.messages[0]) : undefined,
      signal: request.method === 'GET' ? this.#getSignal(reply) : callerSignal(reply),
    };
    const filter = toolFilterFor(target);
    if (filter && inbound && (await this.#filtered(request, reply, filter, inbound, exchange))) return reply;
    const response = await this.#deps.passThrough.send(request, exchange);
    // The broker takes over the upstream's 401 or 403 step-up: the caller is asked to sign in.
    // (Checked here first: a success costs no extra await on the hot path.)
    const challenged = response.status === 401 || response.status === 403;
    if (challenged && (await this.#signIns.answered(request, reply, inbound, response, target))) return reply;
    if (await this.#fellBack(request, reply, response, inbound, exchange, route)) return reply;
    return this.#deps.passThrough.relay(reply, response, exchange);
  }

  /**
   * Applies the plan's rules to the first answer ({@link DispatchPlanner.fallbackAfter}): an
   * answer that may send the message another way is read first; the caller then gets the
   * fallback's answer, or the upstream's own, unchanged. True when it answered the caller itself.
   * A boolean, not the reply: a `FastifyReply` is a thenable that settles with `undefined` once
   * sent, so an awaited reply reads as "not answered" and the caller relayed a second answer
   * into a sent reply (issue 14, finding 13).
   */
  async #fellBack(
    request: FastifyRequest,
    reply: FastifyReply,
    response: UpstreamResponse,
    inbound: MessageBatch | undefined,
    exchange: PassThroughRequest,
    route: PassThroughRoute,
  ): Promise<boolean> {
    const { planner } = this.#deps;
    if (!mayFallBack(route, response.status)) {
      // Nothing to read: the status alone teaches what it can (a success, the transport).
      planner.fallbackAfter(route, { status: response.status });
      return false;
    }
    const text = await this.#deps.http.readText(response).catch(() => '');
    // Whatever happens next, the caller may get the upstream's own answer, unchanged.
    const replay = async () => {
      await this.#deps.passThrough.relay(
        reply,
        { ...response, body: Readable.from([Buffer.from(text)]) as UpstreamResponse['body'] },
        exchange,
      );
      return true;
    };
    const fallback = planner.fallbackAfter(route, { status: response.status, body: parseJson(text) });
    if (!fallback) return replay();
    try {
      // Awaiting a route awaits its reply (a thenable that settles when the answer has ended):
      // an event stream's error after its headers went out lands here too.
      await this.#run(request, reply, inbound, fallback.route);
    } catch (error) {
      // Once the fallback has started answering, the upstream's own answer cannot follow it.
      if (!fallback.keepOriginalOnFailure || reply.raw.headersSent) throw error;
      return replay();
    }
    planner.served(route, fallback);
    return true;
  }

  /** A relayed GET stream ends when its caller leaves or the proxy shuts down. */
  #getSignal(reply: FastifyReply): AbortSignal {
    const link = linkAbort([callerSignal(reply), this.#deps.shutdown]);
    reply.raw.once('close', link.dispose);
    return link.signal;
  }

  /**
   * A server with a tool allowlist: a hidden tool's call is answered here as unknown, and a
   * `tools/list` answer is read whole and filtered instead of streamed through. True when it
   * answered the caller itself: a boolean, never the reply, which is a thenable that settles with
   * `undefined` once sent, so an awaited reply read as "not answered" and the hidden call went
   * upstream after all (issue 17 review, finding 1; as issue 14, finding 13).
   */
  async #filtered(
    request: FastifyRequest,
    reply: FastifyReply,
    filter: ToolFilter,
    inbound: MessageBatch,
    target: PassThroughRequest,
  ): Promise<boolean> {
    const message = inbound.messages[0] as JsonRpcMessage;
    if (inbound.batch) {
      throw new ProxyError('invalid_message', 'Batches are not accepted for servers with a tool allowlist.');
    }
    const refusal = filter.refusal(message);
    if (refusal) {
      request.audit?.answer(refusal);
      const resealed = this.#deps.passThrough.sessionIdFor(undefined, target);
      if (resealed) reply.header('mcp-session-id', resealed);
      reply.code(200).type('application/json').send(refusal);
      return true;
    }
    if (!filter.filters(message) || !isRequest(message)) return false;
    const result = await callOnce(this.#deps.http.reaching(recordingReach(request, target)), {
      url: target.url,
      bearerToken: target.bearerToken,
      sessionId: target.upstreamSessionId,
      protocolVersion: header(request, 'mcp-protocol-version'),
      message,
      timeoutMs: this.#deps.timeoutMs,
      signal: callerSignal(reply),
    });
    const sessionId = this.#deps.passThrough.sessionIdFor(result.sessionId, target);
    if (sessionId) reply.header('mcp-session-id', sessionId);
    request.audit?.answer(result.response);
    reply
      .code(200)
      .type('application/json')
      .send(filter.filter(result.response as JsonRpcResponse));
    return true;
  }

  async #bridged(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch | undefined,
    ctx: HeldSessionContext,
  ) {
    checkProtocolVersion(request);
    const { bridge } = this.#deps;
    if (request.method === 'GET') return bridge.get(request, reply, ctx);
    if (request.method === 'DELETE') return bridge.delete(reply, ctx);
    // An upstream 401 (or 403 step-up) after the session opened asks for a sign-in, as a
    // stateless call's does (issue 18, held-signin).
    return bridge.post(request, reply, inbound as MessageBatch, ctx, (message, answer) =>
      this.#signIns.refusedInSession(request, reply, message, answer),
    );
  }
}
