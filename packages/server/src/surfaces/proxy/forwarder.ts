/**
 * @module surfaces/proxy/forwarder
 * One JSON-RPC message to one upstream and its answer back: the engine behind POST /proxy. It
 * executes the route the dispatch plan (dispatch/plan.ts) gives each message: Streamable HTTP
 * upstreams need no proxy state (the caller carries the upstream's session id, sealed: it never
 * sees the upstream's own, and a raw one is not found); every other upstream (legacy SSE,
 * WebSocket, configured stdio) gets a proxy-held session behind an opaque proxy session id, or a
 * one-shot connection for a lone message.
 */

import type { OAuthBroker } from '../../credentials/broker.ts';
import { LiveCredential } from '../../credentials/live-credential.ts';
import { answerOfFailure } from '../../dispatch/answer-rules.ts';
import type { UpstreamTarget } from '../../dispatch/connector.ts';
import { type HeldSessions, serveCaller } from '../../dispatch/held-sessions.ts';
import {
  type DispatchPlanner,
  type PassThroughRoute,
  type Route,
  sessionRefOf,
} from '../../dispatch/plan.ts';
import { type TargetRequest, TargetResolver } from '../../dispatch/targets.ts';
import { clientEraOf } from '../../eras/classify.ts';
import { findProxyError, ProxyError } from '../../errors.ts';
import { type RequestAudit, targetLabel } from '../../identity/audit-trail.ts';
import { type AnswerSource, recordingReach } from '../../identity/live-requests.ts';
import type { Principal } from '../../identity/principal.ts';
import {
  isRequest,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../../jsonrpc.ts';
import { isRequestAsNotification } from '../../policy/grants.ts';
import { toolFilterFor } from '../../policy/tool-filter.ts';
import type { HeldSession } from '../../sessions/held-session.ts';
import type { ModernSessionPool } from '../../sessions/modern-pool.ts';
import type { OpenedSessionId, SessionIdSealer } from '../../sessions/session-id-sealer.ts';
import type { SessionStore } from '../../sessions/store.ts';
import type { ReachTest, UpstreamHttp } from '../../upstream/http.ts';
import { callOnce } from '../../upstream/one-shot.ts';
import type { ParamHeaderCatalog } from '../../upstream/param-headers.ts';
import { refusalInAnswer } from '../../upstream/status.ts';
import { virtualKey } from '../../virtual/virtual-key.ts';
import type { VirtualServers } from '../../virtual/virtual-servers.ts';

/** What a caller asks to forward. */
export interface ForwardRequest {
  readonly identity: Principal;
  readonly target: TargetRequest;
  readonly sessionId?: string | undefined;
  readonly protocolVersion?: string | undefined;
  readonly message: JsonRpcRequest | JsonRpcNotification;
  /** Caller headers forwarded as they are to HTTP upstreams (`Mcp-Param-*`). */
  readonly forwardHeaders?: Readonly<Record<string, string>> | undefined;
  /** Aborted when the caller goes away. */
  readonly signal: AbortSignal;
  /** The request's audit recorder, when the audit trail is on. */
  readonly audit?: RequestAudit | undefined;
  /** The caller's `Origin`: where the OAuth callback page reports a finished sign-in. */
  readonly origin?: string | undefined;
  /** Where the URL that answers is recorded, for a reload to judge it (identity/live-requests.ts). */
  readonly answer?: AnswerSource | undefined;
}

/** What came back. */
export interface ForwardResult {
  /** The upstream's response; absent for notifications (HTTP 202). */
  readonly response?: JsonRpcResponse | undefined;
  /** Session id to hand back to the caller (the upstream's sealed, or a proxy-held one). */
  readonly sessionId?: string | undefined;
  readonly protocolVersion?: string | undefined;
}

/** Collaborators of the forwarder. */
export interface ForwarderDeps {
  readonly targets: TargetResolver;
  readonly http: UpstreamHttp;
  /** Decides each message's route, and what a first answer changes. */
  readonly planner: DispatchPlanner;
  /** Opens held sessions and one-shot connections. */
  readonly held: HeldSessions;
  readonly sessions: SessionStore<HeldSession>;
  readonly timeoutMs: number;
  readonly paramHeaders?: ParamHeaderCatalog;
  readonly pool: ModernSessionPool<UpstreamTarget>;
  /** Seals Streamable HTTP session ids, as `/mcp` does: one id works on both surfaces. */
  readonly sealer: SessionIdSealer;
  /**
   * The upstream OAuth broker, once loaded (undefined: not loaded, so off): signs the principal
   * in when the caller brings no credential.
   */
  readonly broker?: (() => OAuthBroker | undefined) | undefined;
  /** Virtual servers (issue 20): `server` naming one is answered by the proxy itself. */
  readonly virtual?: VirtualServers | undefined;
}

/** Forwards single messages to upstream MCP servers. */
export class Forwarder {
  readonly #deps: ForwarderDeps;

  constructor(deps: ForwarderDeps) {
    this.#deps = deps;
  }

  /**
   * The key a reload judges a call to `target` by while it runs, known before it is forwarded:
   * a virtual server's (virtual-key.ts: judged as one, review10 GRANTS-3), else the target's.
   */
  requestKey(target: TargetRequest): string {
    const virtual = this.#deps.virtual;
    if ('server' in target && virtual?.has(target.server)) return virtualKey(target.server);
    return TargetResolver.requestKey(target);
  }

  /** Forwards one message and returns the upstream's answer. */
  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const virtual = this.#deps.virtual;
    if ('server' in request.target && virtual?.has(request.target.server)) {
      const { identity, message, protocolVersion, signal } = request;
      const answer = { caller: identity, message, protocolVersion, signal };
      return { response: await virtual.handle(request.target.server, answer) };
    }
    const resolved = await this.#deps.targets.resolve(
      request.target,
      request.identity.grants,
      request.identity.principalKey,
    );
    request.audit?.target(targetLabel(resolved), resolved.tools);
    const broker = this.#deps.broker?.();
    // The broker acts only when neither the caller nor the operator gave an upstream credential.
    if (!broker?.enabled || resolved.kind === 'stdio' || resolved.bearerToken !== undefined) {
      return this.#forwardTo(resolved, request);
    }
    const principalKey = request.identity.principalKey;
    // A session opened with it holds the credential: a refresh, a new sign-in or a disconnect
    // reaches it at its next message (review6 OAUTH-1).
    const credential = await LiveCredential.read(broker, principalKey, resolved, request.signal);
    if (credential.token === undefined && broker.demands(resolved)) {
      throw await broker.required(
        principalKey,
        resolved,
        undefined,
        request.origin,
        undefined,
        request.signal,
      );
    }
    for (let attempt = 0; ; attempt++) {
      const token = credential.token;
      try {
        return await this.#forwardTo({ ...resolved, bearerToken: token, credential }, request);
      } catch (error) {
        const refusal = findProxyError(error);
        if (refusal?.code === 'upstream_unauthorized' && refusal.status === 403 && token !== undefined) {
          // Step-up: the token lacks a scope this call needs (403 insufficient_scope).
          const challenge = refusal.headers['www-authenticate'];
          throw (await broker.stepUp(principalKey, resolved, challenge, request.signal)) ?? error;
        }
        if (refusal?.code !== 'upstream_unauthorized' || refusal.status !== 401) throw error;
        // A refused token is refreshed (never simply dropped: review F5) and the call tried once
        // more; a token refused right after its refresh asks for a sign-in, with no second refresh.
        const fresh =
          token === undefined || attempt > 0
            ? undefined
            : await broker.rejected(principalKey, resolved, token, request.signal);
        if (fresh !== undefined) {
          credential.replace(fresh);
          continue;
        }
        throw await broker.required(
          principalKey,
          resolved,
          refusal.headers['www-authenticate'],
          request.origin,
          refusal,
          request.signal,
        );
      }
    }
  }

  async #forwardTo(target: UpstreamTarget, request: ForwardRequest): Promise<ForwardResult> {
    const { message } = request;
    if (isRequestAsNotification(message)) {
      // Never forwarded: the grant and the audit judge requests (issue 17 review, finding 4).
      request.audit?.dropped(message);
      return {};
    }
    const route = await this.#deps.planner.plan(
      {
        principalKey: request.identity.principalKey,
        rateClass: request.identity.grants.rateClass,
        surface: 'proxy',
        era: clientEraOf(message, request.protocolVersion),
        opens: message.method === 'initialize',
        session: sessionRefOf(request.sessionId),
      },
      target,
      () => request.signal,
    );
    return this.#run(route, request);
  }

  /** Executes a route of the plan. */
  async #run(route: Route, request: ForwardRequest): Promise<ForwardResult> {
    switch (route.kind) {
      case 'refused':
        throw new ProxyError(route.code);
      case 'held': {
        const session = this.#deps.sessions.get(route.sessionId, route.ownerId);
        if (!session || session.closed) throw new ProxyError('session_not_found');
        if (!serveCaller(session, route.targetKey, route.target)) {
          throw new ProxyError(
            'session_not_found',
            'This proxy session belongs to another MCP server or URL grant.',
          );
        }
        await session.renew();
        return { ...(await this.#viaSession(session, request, route.target)), sessionId: route.sessionId };
      }
      case 'open-held': {
        const { sessions, held } = this.#deps;
        const { id, session } = await held.open(route, route.target);
        try {
          return { ...(await this.#viaSession(session, request, route.target)), sessionId: id };
        } catch (error) {
          await sessions.delete(id);
          throw error;
        }
      }
      case 'one-shot':
        return this.#deps.held.oneShot(route, route.target, (session) =>
          this.#viaSession(session, request, route.target),
        );
      case 'pooled':
        return this.#viaPool(route, request);
      case 'pass-through':
        return this.#passThrough(route, request);
    }
  }

  /** A Streamable HTTP exchange; its first answer may still send the message another way. */
  async #passThrough(route: PassThroughRoute, request: ForwardRequest): Promise<ForwardResult> {
    const { planner, sealer } = this.#deps;
    let opened: OpenedSessionId | undefined;
    if (route.sealedId !== undefined) {
      // Only an id this proxy sealed for this principal and target (issue 14, finding 2): a raw
      // upstream id, or another principal's, is never forwarded.
      opened = sealer.open(route.sealedId, route.ownerId, route.targetKey);
      if (opened === undefined) throw new ProxyError('session_not_found');
    }
    let result: ForwardResult;
    try {
      result = await this.#viaStreamable(route.target, request, { opened, targetKey: route.targetKey });
    } catch (error) {
      const answer = answerOfFailure(error);
      const fallback = answer && planner.fallbackAfter(route, answer);
      if (!fallback) throw error;
      let served: ForwardResult;
      try {
        served = await this.#run(fallback.route, request);
      } catch (fallbackError) {
        throw fallback.keepOriginalOnFailure ? error : fallbackError;
      }
      planner.served(route, fallback);
      return served;
    }
    const fallback = planner.fallbackAfter(route, { status: 200, body: result.response });
    if (!fallback) return result;
    const served = await this.#run(fallback.route, request);
    planner.served(route, fallback);
    return served;
  }

  async #viaStreamable(
    target: {
      readonly url: URL;
      /** The configured server's name, when the caller named one. */
      readonly name?: string | undefined;
      readonly bearerToken?: string | undefined;
      readonly tools?: readonly string[] | undefined;
      readonly mayReach?: ReachTest | undefined;
    },
    request: ForwardRequest,
    session: { readonly opened: OpenedSessionId | undefined; readonly targetKey: string },
  ): Promise<ForwardResult> {
    const { opened } = session;
    const upstreamSessionId = opened?.upstreamId;
    const { message } = request;
    const filter = toolFilterFor(target);
    const refusal = filter?.refusal(message);
    if (refusal) return { response: refusal, sessionId: opened?.sealedId };
    const exchanged = await callOnce(this.#deps.http.reaching(recordingReach(request.answer, target)), {
      url: target.url,
      bearerToken: target.bearerToken,
      sessionId: upstreamSessionId,
      protocolVersion: request.protocolVersion,
      forwardHeaders: request.forwardHeaders,
      message,
      timeoutMs: this.#deps.timeoutMs,
      signal: request.signal,
      paramHeaders: this.#deps.paramHeaders,
    });
    // The caller gets the upstream's id sealed; its own sealed id back while the upstream keeps it
    // (re-sealed if it came under an older secret).
    const issued = exchanged.sessionId;
    const result = {
      ...exchanged,
      sessionId:
        issued === undefined || issued === upstreamSessionId
          ? opened?.sealedId
          : this.#deps.sealer.seal(issued, request.identity.principalKey, session.targetKey),
    };
    if (filter?.filters(message) && result.response)
      return { ...result, response: filter.filter(result.response) };
    return result;
  }

  /** A modern caller of a session-era server, through a pooled upstream session. */
  async #viaPool(route: Extract<Route, { kind: 'pooled' }>, request: ForwardRequest): Promise<ForwardResult> {
    const { message, signal } = request;
    if (!isRequest(message)) return {}; // cancellation is the caller closing its request
    const session = await this.#deps.pool.session(route, message);
    const response = await this.#deps.pool
      .prepare(session, message, toolFilterFor(route.target))
      .call({ timeoutMs: this.#deps.timeoutMs, signal });
    // The pooled session's facade answers the upstream's 401 or 403 rather than throwing it: on
    // the broker's credential it is thrown again, so forward() decides as for every other route
    // (refresh once and send once more, else a sign-in; a step-up for a 403).
    const brokered = route.target.kind !== 'stdio' && route.target.credential !== undefined;
    const refusal = brokered ? refusalInAnswer(response) : undefined;
    if (refusal !== undefined) throw refusal;
    return { response };
  }

  /** One message through a held session, under the tool grant of `target` as resolved for this caller now. */
  async #viaSession(
    session: HeldSession,
    request: ForwardRequest,
    target: UpstreamTarget,
  ): Promise<ForwardResult> {
    const { message, signal } = request;
    if (!isRequest(message)) {
      await session.send(message);
      return { protocolVersion: session.upstream.protocolVersion };
    }
    const response = await session.call(
      message,
      { timeoutMs: this.#deps.timeoutMs, signal },
      toolFilterFor(target),
    );
    return { response, protocolVersion: session.upstream.protocolVersion };
  }
}
