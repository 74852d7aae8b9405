/**
 * @module surfaces/mcp/endpoint
 * The proxy's spec-compliant Streamable HTTP endpoint (`/mcp`, `/servers/{name}/mcp`), so any
 * MCP client can use it unchanged. Streamable HTTP upstreams are passed through statelessly;
 * every other upstream is bridged through a proxy-held session.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { linkAbort } from '../../abort.ts';
import { UpstreamConnector } from '../../dispatch/connector.ts';
import type { EraDetector } from '../../dispatch/era-detector.ts';
import {
  type ResolvedTarget,
  TargetResolver,
  TRANSPORT_CHOICES,
  type TransportChoice,
} from '../../dispatch/targets.ts';
import type { TransportVerdicts } from '../../dispatch/transport-verdicts.ts';
import { clientEraOf, isModernOnlyRefusal, parseJson } from '../../eras/classify.ts';
import { checkHeaderAgreement, isModernProtocolError } from '../../eras/request-metadata.ts';
import { ProxyError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import { checkHostAndOrigin, checkProtocolVersion, type InboundPolicy } from '../../http/inbound-checks.ts';
import { isJsonRpcMessage, isRequest, type JsonRpcMessage, type JsonRpcResponse } from '../../jsonrpc.ts';
import { type ToolFilter, toolFilterFor } from '../../policy/tool-filter.ts';
import type { OpenedSessionId, SessionIdSealer } from '../../sessions/session-id-sealer.ts';
import { PROXY_SESSION_PREFIX } from '../../sessions/store.ts';
import { headerValue, type UpstreamHttp, type UpstreamResponse } from '../../upstream/http.ts';
import { callOnce } from '../../upstream/one-shot.ts';
import type { HeldSessionContext, HeldSessionHandler } from './held-session-handler.ts';
import type { PassThrough, PassThroughRequest } from './passthrough.ts';
import type { PooledSessionHandler } from './pooled-session-handler.ts';

/** Collaborators of the endpoint. */
export interface McpEndpointDeps {
  readonly targets: TargetResolver;
  readonly passThrough: PassThrough;
  readonly bridge: HeldSessionHandler;
  /** Modern clients of session-era upstreams. */
  readonly modern: PooledSessionHandler;
  readonly eras: EraDetector;
  readonly verdicts: TransportVerdicts;
  readonly sealer: SessionIdSealer;
  readonly http: UpstreamHttp;
  readonly inbound: InboundPolicy;
  readonly timeoutMs: number;
  /** Aborted when the proxy shuts down: relayed GET streams end then (they never end alone). */
  readonly shutdown: AbortSignal;
}

/** A parsed POST body. */
interface Inbound {
  readonly messages: JsonRpcMessage[];
  readonly batch: boolean;
}

/** Serves the Streamable HTTP endpoint. */
export class McpEndpoint {
  readonly #deps: McpEndpointDeps;

  constructor(deps: McpEndpointDeps) {
    this.#deps = deps;
  }

  /** Handles POST, GET or DELETE on `/mcp` (serverName absent) or `/servers/{name}/mcp`. */
  async handle(request: FastifyRequest, reply: FastifyReply, serverName?: string): Promise<FastifyReply> {
    checkHostAndOrigin(request, this.#deps.inbound);
    const identity = request.identity;
    if (!identity) throw new ProxyError('unauthorized');
    const inbound = request.method === 'POST' ? parseBody(request.body) : undefined;
    request.mcpMethod = inbound?.messages.map((m) => ('method' in m ? m.method : 'response')).join(',');

    const target = await this.#resolve(request, serverName, identity.servers);
    const targetKey = TargetResolver.key(target);
    request.targetKey = targetKey;
    request.targetHost = target.kind === 'stdio' ? `stdio:${target.name}` : target.url.host;
    const sessionId = header(request, 'mcp-session-id');

    const knownSse = target.kind === 'http-auto' && this.#deps.verdicts.get(target.url) === 'sse';
    if (sessionId === undefined && inbound && this.#isModern(request, inbound)) {
      // Refuse header/body disagreement here rather than spend an upstream call on it.
      for (const message of inbound.messages) checkHeaderAgreement(request.headers, message);
      if (knownSse || needsBridge(target) || (await this.#speaksOnlySessionEra(target, reply))) {
        return this.#deps.modern.post(request, reply, inbound, {
          ownerId: identity.principalKey,
          target: knownSse ? this.#bridgeTarget(target) : target,
          targetKey,
        });
      }
    } else if (
      sessionId === undefined &&
      (target.kind === 'http-auto' || target.kind === 'streamable-http') &&
      this.#deps.eras.known(UpstreamConnector.eraTarget(target)).session === false
    ) {
      // A session client of a server known to speak only 2026-07-28: the proxy holds the session.
      return this.#bridged(request, reply, inbound, {
        ownerId: identity.principalKey,
        target,
        targetKey,
        sessionId,
      });
    }
    if (
      sessionId?.startsWith(PROXY_SESSION_PREFIX) ||
      (sessionId === undefined && (knownSse || needsBridge(target)))
    ) {
      const bridgeTarget = this.#bridgeTarget(target);
      return this.#bridged(request, reply, inbound, {
        ownerId: identity.principalKey,
        target: bridgeTarget,
        targetKey,
        sessionId,
      });
    }
    if (target.kind === 'stdio' || target.kind === 'websocket' || target.kind === 'sse') {
      throw new ProxyError('session_not_found');
    }
    let opened: OpenedSessionId | undefined;
    if (sessionId !== undefined) {
      // Only ids this proxy sealed for this principal and target: never a raw upstream id.
      opened = this.#deps.sealer.open(sessionId, identity.principalKey, targetKey);
      if (opened === undefined) throw new ProxyError('session_not_found');
    }
    const upstreamSessionId = opened?.upstreamId;
    // Refuse header/body disagreement here rather than spend an upstream call on it.
    for (const message of inbound?.messages ?? []) checkHeaderAgreement(request.headers, message);
    const exchange: PassThroughRequest = {
      url: target.url,
      bearerToken: target.bearerToken,
      upstreamSessionId,
      sealedSessionId: opened?.sealedId,
      resealed: opened?.resealed ?? false,
      ownerId: identity.principalKey,
      targetKey,
      body: inbound ? JSON.stringify(inbound.batch ? inbound.messages : inbound.messages[0]) : undefined,
      signal: request.method === 'GET' ? this.#getSignal(reply) : callerSignal(reply),
    };
    const filter = toolFilterFor(target);
    if (filter && inbound) {
      const filtered = await this.#filtered(request, reply, filter, inbound, exchange);
      if (filtered) return filtered;
    }
    const response = await this.#deps.passThrough.send(request, exchange);
    const transportUnknown = target.kind === 'http-auto' && this.#deps.verdicts.get(target.url) === undefined;
    const eraUnknown =
      upstreamSessionId === undefined &&
      this.#deps.eras.known(UpstreamConnector.eraTarget(target)).session === undefined;
    if (transportUnknown || eraUnknown) {
      const answered = await this.#probe(
        request,
        reply,
        response,
        inbound,
        exchange,
        target,
        transportUnknown,
      );
      if (answered) return reply;
    }
    return this.#deps.passThrough.relay(reply, response, exchange);
  }

  /** True when the POST carries modern (2026-07-28) requests. */
  #isModern(request: FastifyRequest, inbound: Inbound): boolean {
    const version = header(request, 'mcp-protocol-version');
    return inbound.messages.some(
      (message) => 'method' in message && clientEraOf(message, version) === 'modern',
    );
  }

  /** For a modern client: is the (HTTP) upstream known, or found by a probe, to speak only the session era? */
  async #speaksOnlySessionEra(target: ResolvedTarget, reply: FastifyReply): Promise<boolean> {
    if (target.kind !== 'http-auto' && target.kind !== 'streamable-http') return false;
    const supported = await this.#deps.eras.supportsModern(
      UpstreamConnector.eraTarget(target),
      callerSignal(reply),
    );
    return supported === false;
  }

  /** A relayed GET stream ends when its caller leaves or the proxy shuts down. */
  #getSignal(reply: FastifyReply): AbortSignal {
    const link = linkAbort([callerSignal(reply), this.#deps.shutdown]);
    reply.raw.once('close', link.dispose);
    return link.signal;
  }

  /**
   * A server with a tool allowlist: a hidden tool's call is answered here as unknown, and a
   * `tools/list` answer is read whole and filtered instead of streamed through.
   */
  async #filtered(
    request: FastifyRequest,
    reply: FastifyReply,
    filter: ToolFilter,
    inbound: Inbound,
    target: PassThroughRequest,
  ): Promise<FastifyReply | undefined> {
    const message = inbound.messages[0] as JsonRpcMessage;
    if (inbound.batch) {
      throw new ProxyError('invalid_message', 'Batches are not accepted for servers with a tool allowlist.');
    }
    const refusal = filter.refusal(message);
    if (refusal) {
      const resealed = this.#deps.passThrough.sessionIdFor(undefined, target);
      if (resealed) reply.header('mcp-session-id', resealed);
      return reply.code(200).type('application/json').send(refusal);
    }
    if (!filter.filters(message) || !isRequest(message)) return undefined;
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
    return reply
      .code(200)
      .type('application/json')
      .send(filter.filter(result.response as JsonRpcResponse));
  }

  /**
   * MCP back-compat: an initialize POST refused with 400/404/405 by a server never seen before
   * may mean it speaks the 2024-11-05 SSE transport; try that, else relay the refusal. True when
   * the probe answered the caller itself. A boolean, not the reply: a `FastifyReply` is a thenable
   * that settles with `undefined` once sent, so an awaited reply reads as "not answered" and the
   * caller relayed a second answer into a sent reply (issue 14, finding 13).
   */
  async #probe(
    request: FastifyRequest,
    reply: FastifyReply,
    response: UpstreamResponse,
    inbound: Inbound | undefined,
    exchange: PassThroughRequest,
    target: ResolvedTarget & { readonly url: URL },
    trySse: boolean,
  ): Promise<boolean> {
    const { url } = target;
    const initializes = inbound?.messages.some((m) => 'method' in m && m.method === 'initialize') ?? false;
    if (response.status >= 200 && response.status < 300) {
      if (initializes) {
        if (trySse) this.#deps.verdicts.set(url, 'streamable-http');
        this.#deps.eras.learn(UpstreamConnector.eraTarget(target), 'session', true);
      }
      return false;
    }
    if (!initializes || ![400, 404, 405].includes(response.status)) return false;
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
    // A server that speaks only 2026-07-28 refused the session client: the proxy bridges it.
    if (isModernOnlyRefusal(parseJson(text))) {
      this.#deps.eras.learn(UpstreamConnector.eraTarget(target), 'session', false);
      this.#deps.eras.learn(UpstreamConnector.eraTarget(target), 'modern', true);
      await this.#bridged(request, reply, inbound, {
        ownerId: exchange.ownerId,
        target,
        targetKey: exchange.targetKey,
        sessionId: undefined,
      });
      return true;
    }
    // A modern server's protocol error (e.g. unsupported version, with the versions it supports)
    // is the answer the client needs to negotiate: no legacy fallback then (spec back-compat).
    if (isModernProtocolError(text) || !trySse) return replay();
    try {
      await this.#bridged(request, reply, inbound, {
        ownerId: exchange.ownerId,
        target: { ...target, kind: 'sse' },
        targetKey: exchange.targetKey,
        sessionId: undefined,
      });
    } catch {
      return replay();
    }
    this.#deps.verdicts.set(url, 'sse');
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
    allowed: readonly string[] | undefined,
  ): Promise<ResolvedTarget> {
    const bearerToken = header(request, 'x-mcp-token') ?? bearerFrom(header(request, 'authorization'));
    if (serverName !== undefined)
      return this.#deps.targets.resolve({ server: serverName, bearerToken }, allowed);
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
    return this.#deps.targets.resolve({ url, transport: transport as TransportChoice, bearerToken }, allowed);
  }

  #bridgeTarget(target: ResolvedTarget): HeldSessionContext['target'] {
    if (target.kind === 'http-auto') {
      // Only a proxy-issued id or a known legacy server lead here: both mean SSE.
      return { ...target, kind: 'sse' };
    }
    return target;
  }
}

function needsBridge(target: ResolvedTarget): boolean {
  return target.kind === 'stdio' || target.kind === 'websocket' || target.kind === 'sse';
}

function parseBody(body: unknown): Inbound {
  const batch = Array.isArray(body);
  const messages = batch ? (body as unknown[]) : [body];
  if (messages.length === 0 || !messages.every(isJsonRpcMessage)) throw new ProxyError('invalid_message');
  return { messages: messages as JsonRpcMessage[], batch };
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = headerValue(request.headers, name);
  return value === undefined || value === '' ? undefined : value;
}

function bearerFrom(authorization: string | undefined): string | undefined {
  const match = authorization === undefined ? null : /^Bearer\s+(\S+)$/i.exec(authorization);
  return match?.[1];
}
