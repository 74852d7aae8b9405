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
import {
  type ResolvedTarget,
  TargetResolver,
  TRANSPORT_CHOICES,
  type TransportChoice,
} from '../../dispatch/targets.ts';
import { clientEraOf, type Era, parseJson } from '../../eras/classify.ts';
import { findProxyError, ProxyError, toJsonRpcError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import { checkHostAndOrigin, checkProtocolVersion, type InboundPolicy } from '../../http/inbound-checks.ts';
import { serverLabel, targetLabel } from '../../identity/audit-trail.ts';
import { bearerOf } from '../../identity/hook.ts';
import type { Grants } from '../../identity/principal.ts';
import { isProxyCredential } from '../../identity/proxy-credential.ts';
import {
  isJsonRpcMessage,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../../jsonrpc.ts';
import { isRequestAsNotification } from '../../policy/grants.ts';
import { type ToolFilter, toolFilterFor } from '../../policy/tool-filter.ts';
import type { OpenedSessionId, SessionIdSealer } from '../../sessions/session-id-sealer.ts';
import { discard, headerValue, type UpstreamHttp, type UpstreamResponse } from '../../upstream/http.ts';
import { callOnce } from '../../upstream/one-shot.ts';
import { checkHeaderAgreement } from '../../upstream/request-metadata.ts';
import { authRefusal } from '../../upstream/status.ts';
import type { VirtualServers } from '../../virtual/virtual-servers.ts';
import type { HeldSessionContext, HeldSessionHandler } from './held-session-handler.ts';
import type { PassThrough, PassThroughRequest } from './passthrough.ts';
import type { PooledSessionHandler } from './pooled-session-handler.ts';
import type { SignInRounds } from './sign-in-input.ts';
import { urlElicitationRequired } from './url-elicitation.ts';
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
  /** The upstream OAuth broker: signs the principal in when the caller brings no credential. */
  readonly broker?: OAuthBroker | undefined;
  /** How a 2026-07-28 client is asked to sign in (an input request), and its retry resumed. */
  readonly signIn?: SignInRounds | undefined;
  /** Virtual servers (issue 20): `/servers/{name}/mcp` with a virtual server's name. */
  readonly virtual?: VirtualServers | undefined;
}

/** A request the broker supplies the upstream credential of. */
interface Brokered {
  readonly principalKey: string;
  readonly target: ResolvedTarget;
  /** Whether the vault held a token (a 401 then means it was refused). */
  readonly hadToken: boolean;
  /** The token it supplied, so a refusal only touches an entry that still holds it (F5). */
  readonly token: string | undefined;
  readonly origin: string | undefined;
}

/** A parsed POST body. */
interface Inbound {
  readonly messages: JsonRpcMessage[];
  readonly batch: boolean;
}

/** The era of a POST: modern when any of its requests is (2026-07-28). */
function eraOf(request: FastifyRequest, inbound: Inbound): Era {
  const version = header(request, 'mcp-protocol-version');
  return inbound.messages.some((message) => 'method' in message && clientEraOf(message, version) === 'modern')
    ? 'modern'
    : 'session';
}

/** Serves the Streamable HTTP endpoint. */
export class McpEndpoint {
  readonly #deps: McpEndpointDeps;
  /** Requests whose upstream credential the broker supplies, while they run. */
  readonly #brokered = new WeakMap<FastifyRequest, Brokered>();

  constructor(deps: McpEndpointDeps) {
    this.#deps = deps;
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
      const inbound = parsed && withoutRequestsAsNotifications(parsed, request);
      const messages = parsed && (inbound?.messages ?? []);
      const exchange = { name: serverName, identity, messages, batch: parsed?.batch ?? false };
      return serveVirtual(virtual, exchange, request, reply);
    }
    if (parsed && this.#deps.signIn) {
      const resumed = this.#resumeSignIn(request, reply, parsed, identity.principalKey);
      if (resumed) return resumed;
    }

    const resolved = await this.#resolve(request, serverName, identity.grants);
    const target = await this.#withBrokeredToken(request, resolved, identity.principalKey);
    if (target === undefined) return this.#authRequired(request, reply, parsed, resolved, undefined);
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
      const refusal = findProxyError(error);
      if (refusal?.code !== 'upstream_unauthorized' || !this.#brokered.has(request) || reply.sent)
        throw error;
      const challenge = refusal.headers['www-authenticate'];
      const stepUp = refusal.status === 403 ? await this.#stepUp(request, challenge) : undefined;
      if (stepUp) return this.#askSignIn(request, reply, inbound, stepUp);
      if (refusal.status !== 401) throw error;
      return this.#authRequired(request, reply, inbound, resolved, challenge);
    }
  }

  /**
   * The target with the principal's upstream token from the vault when the broker acts (no
   * credential from the caller or the operator); undefined when a sign-in must come first.
   */
  async #withBrokeredToken(
    request: FastifyRequest,
    target: ResolvedTarget,
    principalKey: string,
  ): Promise<ResolvedTarget | undefined> {
    const broker = this.#deps.broker;
    if (!broker?.enabled || target.kind === 'stdio' || target.bearerToken !== undefined) return target;
    const token = await broker.bearerFor(principalKey, target);
    this.#brokered.set(request, {
      principalKey,
      target,
      hadToken: token !== undefined,
      token,
      origin: header(request, 'origin'),
    });
    if (token === undefined) return broker.demands(target) ? undefined : target;
    return { ...target, bearerToken: token };
  }

  /**
   * Starts a sign-in and answers: a lone request gets MCP's URL elicitation error (-32042) as its
   * answer; anything else (a notification, a batch, a GET) the HTTP 401 `upstream_auth_required`.
   */
  async #authRequired(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: Inbound | undefined,
    target: ResolvedTarget,
    challenge: string | undefined,
  ): Promise<FastifyReply> {
    const error = await this.#signInFor(request, reply, target, challenge);
    return this.#askSignIn(request, reply, inbound, error);
  }

  /**
   * The `upstream_auth_required` of a sign-in started after the upstream's 401; throws the
   * upstream's own refusal when the server shows no sign of OAuth.
   */
  async #signInFor(
    request: FastifyRequest,
    reply: FastifyReply,
    target: ResolvedTarget,
    challenge: string | undefined,
  ): Promise<ProxyError> {
    const broker = this.#deps.broker as OAuthBroker;
    const brokered = this.#brokered.get(request);
    const principalKey = (request.identity as { principalKey: string }).principalKey;
    if (target.kind === 'stdio') throw new ProxyError('internal_error');
    const signal = callerSignal(reply);
    if (brokered?.token !== undefined) await broker.rejected(principalKey, target, brokered.token, signal);
    // Not an OAuth server after all: its own refusal, as without the broker.
    const notOAuth = authRefusal(401, challenge, { upstreamStatus: 401 }) as ProxyError;
    const error = await broker.required(
      principalKey,
      target,
      challenge,
      header(request, 'origin'),
      notOAuth,
      signal,
    );
    if (error === notOAuth) throw error;
    return error;
  }

  /**
   * Step-up: the upstream refused the broker's token with 403 `insufficient_scope`; the caller
   * is asked to sign in again for more scopes, as for a 401. Undefined when the broker supplied
   * no token or the 403 is no scope challenge: the upstream's refusal stands.
   */
  async #stepUp(request: FastifyRequest, challenge: string | undefined): Promise<ProxyError | undefined> {
    const brokered = this.#brokered.get(request);
    const broker = this.#deps.broker;
    if (!broker || !brokered?.hadToken || brokered.target.kind === 'stdio') return undefined;
    return broker.stepUp(brokered.principalKey, brokered.target, challenge);
  }

  /**
   * A pooled session's upstream refused the broker's token mid-session (its answer carries the
   * refusal and the challenge in `data`): the caller is asked to sign in (401) or to step up
   * (403 `insufficient_scope`) instead. Undefined: the answer stands.
   */
  async #pooledRefusal(
    request: FastifyRequest,
    reply: FastifyReply,
    message: JsonRpcRequest,
    answer: JsonRpcResponse,
  ): Promise<JsonRpcResponse | undefined> {
    const brokered = this.#brokered.get(request);
    const data = 'error' in answer ? (answer.error.data as Record<string, unknown> | undefined) : undefined;
    if (!brokered || data?.code !== 'upstream_unauthorized') return undefined;
    const challenge = typeof data.wwwAuthenticate === 'string' ? data.wwwAuthenticate : undefined;
    let error: ProxyError | undefined;
    if (data.upstreamStatus === 403) error = await this.#stepUp(request, challenge);
    else if (data.upstreamStatus === 401) {
      error = await this.#signInFor(request, reply, brokered.target, challenge).catch((refusal: unknown) => {
        if (findProxyError(refusal)?.code === 'upstream_unauthorized') return undefined;
        throw refusal;
      });
    }
    return error && this.#signInAnswer(request, message, error);
  }

  /** Answers `upstream_auth_required`: in a lone request's answer where it can, else as the HTTP 401. */
  #askSignIn(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: Inbound | undefined,
    error: ProxyError,
  ): FastifyReply {
    const only = inbound && !inbound.batch && inbound.messages.length === 1 ? inbound.messages[0] : undefined;
    if (!only || !isRequest(only)) throw error;
    const answer = this.#signInAnswer(request, only, error);
    request.audit?.answer(answer);
    return reply.code(200).type('application/json').send(answer);
  }

  /** The answer to `message` that asks for the sign-in of `error`, in the caller's era. */
  #signInAnswer(request: FastifyRequest, message: JsonRpcRequest, error: ProxyError): JsonRpcResponse {
    const signIn = this.#deps.signIn;
    const principalKey = (request.identity as { principalKey: string }).principalKey;
    // 2026-07-28 has no -32042: its clients are asked through an input request.
    return signIn && clientEraOf(message, header(request, 'mcp-protocol-version')) === 'modern'
      ? signIn.answer(message, error, principalKey)
      : urlElicitationRequired(message.id, error);
  }

  /**
   * A 2026-07-28 client's retry after a sign-in round: the proxy's `requestState` and input
   * response come off each request before anything else sees it. A declined sign-in (or a
   * handle that is not the caller's) is the lone request's answer; undefined when it goes on.
   */
  #resumeSignIn(
    request: FastifyRequest,
    reply: FastifyReply,
    parsed: Inbound,
    principalKey: string,
  ): FastifyReply | undefined {
    const signIn = this.#deps.signIn as SignInRounds;
    for (const [index, message] of parsed.messages.entries()) {
      if (!isRequest(message)) continue;
      try {
        parsed.messages[index] = signIn.resume(message, principalKey);
      } catch (error) {
        if (parsed.batch) throw error;
        const answer = toJsonRpcError(error, message.id);
        request.audit?.answer(answer);
        return reply.code(200).type('application/json').send(answer);
      }
    }
    return undefined;
  }

  /** Executes a route of the plan. */
  async #run(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: Inbound | undefined,
    route: Route,
  ): Promise<FastifyReply> {
    switch (route.kind) {
      case 'refused':
        throw new ProxyError(route.code);
      case 'pooled':
        // Only a modern POST is pooled: it has a body.
        return this.#deps.modern.post(request, reply, inbound as Inbound, route, (message, answer) =>
          this.#pooledRefusal(request, reply, message, answer),
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
    inbound: Inbound | undefined,
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
      bearerToken: target.bearerToken,
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
    if (response.status === 403) {
      const stepUp = await this.#stepUp(request, headerValue(response.headers, 'www-authenticate')).catch(
        (error: unknown) => {
          discard(response);
          throw error;
        },
      );
      if (stepUp) {
        discard(response);
        return this.#askSignIn(request, reply, inbound, stepUp);
      }
    }
    if (response.status === 401 && this.#brokered.has(request)) {
      // The broker takes over the upstream's challenge: the caller is asked to sign in instead.
      const challenge = headerValue(response.headers, 'www-authenticate');
      discard(response);
      return this.#authRequired(
        request,
        reply,
        inbound,
        this.#brokered.get(request)?.target ?? target,
        challenge,
      );
    }
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
    inbound: Inbound | undefined,
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
    inbound: Inbound,
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
    const result = await callOnce(this.#deps.http, {
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
    inbound: Inbound | undefined,
    ctx: HeldSessionContext,
  ) {
    checkProtocolVersion(request);
    const { bridge } = this.#deps;
    if (request.method === 'GET') return bridge.get(request, reply, ctx);
    if (request.method === 'DELETE') return bridge.delete(reply, ctx);
    return bridge.post(request, reply, inbound as Inbound, ctx);
  }

  async #resolve(
    request: FastifyRequest,
    serverName: string | undefined,
    grants: Grants,
  ): Promise<ResolvedTarget> {
    // Authorization is the caller's upstream token unless it carried the proxy credential; the
    // proxy credential itself, sent again as the upstream token, never goes upstream.
    const offered =
      header(request, 'x-mcp-token') ??
      (request.credentialInAuthorization ? undefined : bearerOf(header(request, 'authorization')));
    const bearerToken = offered !== undefined && isProxyCredential(request, offered) ? undefined : offered;
    if (serverName !== undefined)
      return this.#deps.targets.resolve({ server: serverName, bearerToken }, grants);
    const url = header(request, 'x-mcp-server-url');
    if (url === undefined) {
      throw new ProxyError(
        'invalid_target',
        'Name the MCP server: send its URL in the X-MCP-Server-URL header, or use /servers/{name}/mcp.',
      );
    }
    const transport = header(request, 'x-mcp-transport') ?? 'auto';
    if (!(TRANSPORT_CHOICES as readonly string[]).includes(transport)) {
      throw new ProxyError(
        'invalid_target',
        `X-MCP-Transport must be one of ${TRANSPORT_CHOICES.join(', ')}.`,
      );
    }
    return this.#deps.targets.resolve({ url, transport: transport as TransportChoice, bearerToken }, grants);
  }
}

function parseBody(body: unknown): Inbound {
  const batch = Array.isArray(body);
  const messages = batch ? (body as unknown[]) : [body];
  if (messages.length === 0 || !messages.every(isJsonRpcMessage)) throw new ProxyError('invalid_message');
  return { messages: messages as JsonRpcMessage[], batch };
}

/**
 * The messages that may go on: a notification under a request's method never reaches the
 * upstream (policy/grants.ts `isRequestAsNotification`), it is dropped and audited. Undefined
 * when nothing is left (the caller gets 202, as for any notification).
 */
function withoutRequestsAsNotifications(inbound: Inbound, request: FastifyRequest): Inbound | undefined {
  if (!inbound.messages.some(isRequestAsNotification)) return inbound;
  const kept: JsonRpcMessage[] = [];
  for (const message of inbound.messages) {
    if (!isRequestAsNotification(message)) kept.push(message);
    else if ('method' in message) request.audit?.dropped(message);
  }
  return kept.length === 0 ? undefined : { messages: kept, batch: inbound.batch };
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = headerValue(request.headers, name);
  return value === undefined || value === '' ? undefined : value;
}
