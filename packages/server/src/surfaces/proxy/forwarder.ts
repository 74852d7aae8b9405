/**
 * @module surfaces/proxy/forwarder
 * One JSON-RPC message to one upstream and its answer back: the engine behind POST /proxy.
 * Streamable HTTP upstreams need no proxy state (the caller carries the upstream's session id,
 * sealed: it never sees the upstream's own, and a raw one is not found); every
 * other upstream (legacy SSE, WebSocket, configured stdio) gets a proxy-held bridge session
 * behind an opaque proxy session id.
 */

import { UpstreamConnector, type UpstreamTarget } from '../../dispatch/connector.ts';
import type { EraDetector } from '../../dispatch/era-detector.ts';
import { type TargetRequest, TargetResolver } from '../../dispatch/targets.ts';
import type { TransportVerdicts } from '../../dispatch/transport-verdicts.ts';
import { clientEraOf, isModernOnlyRefusal } from '../../eras/classify.ts';
import type { ParamHeaderCatalog } from '../../eras/param-headers.ts';
import { ProxyError } from '../../errors.ts';
import type { TokenIdentity } from '../../identity/tokens.ts';
import {
  isRequest,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../../jsonrpc.ts';
import { toolFilterFor } from '../../policy/tool-filter.ts';
import { HeldSession } from '../../sessions/held-session.ts';
import type { ModernSessionPool } from '../../sessions/modern-pool.ts';
import type { OpenedSessionId, SessionIdSealer } from '../../sessions/session-id-sealer.ts';
import { PROXY_SESSION_PREFIX, type SessionStore } from '../../sessions/store.ts';
import type { UpstreamHttp } from '../../upstream/http.ts';
import { callOnce } from '../../upstream/one-shot.ts';
import { invitesSseProbe } from '../../upstream/status.ts';

const noop = (): void => {};

/** What a caller asks to forward. */
export interface ForwardRequest {
  readonly identity: TokenIdentity;
  readonly target: TargetRequest;
  readonly sessionId?: string | undefined;
  readonly protocolVersion?: string | undefined;
  readonly message: JsonRpcRequest | JsonRpcNotification;
  /** Caller headers forwarded as they are to HTTP upstreams (`Mcp-Param-*`). */
  readonly forwardHeaders?: Readonly<Record<string, string>> | undefined;
  /** Aborted when the caller goes away. */
  readonly signal: AbortSignal;
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
  readonly connector: UpstreamConnector;
  readonly sessions: SessionStore<HeldSession>;
  readonly verdicts: TransportVerdicts;
  readonly timeoutMs: number;
  readonly paramHeaders?: ParamHeaderCatalog;
  readonly eras: EraDetector;
  readonly pool: ModernSessionPool;
  /** Seals Streamable HTTP session ids, as `/mcp` does: one id works on both surfaces. */
  readonly sealer: SessionIdSealer;
}

/** Forwards single messages to upstream MCP servers. */
export class Forwarder {
  readonly #deps: ForwarderDeps;

  constructor(deps: ForwarderDeps) {
    this.#deps = deps;
  }

  /** Forwards one message and returns the upstream's answer. */
  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const target = await this.#deps.targets.resolve(request.target, request.identity.servers);
    const { sessionId } = request;

    if (sessionId?.startsWith(PROXY_SESSION_PREFIX)) {
      const session = this.#deps.sessions.get(sessionId, request.identity.principalKey);
      if (!session || session.closed) throw new ProxyError('session_not_found');
      if (session.target !== TargetResolver.key(target)) {
        throw new ProxyError('session_not_found', 'This proxy session belongs to another MCP server.');
      }
      return { ...(await this.#viaSession(session, request)), sessionId };
    }
    // Any other id must be one this proxy sealed for this principal and target (issue 14,
    // finding 2): a raw upstream id, or another token's, is never forwarded.
    const targetKey = TargetResolver.key(target);
    let opened: OpenedSessionId | undefined;
    if (sessionId !== undefined) {
      opened = this.#deps.sealer.open(sessionId, request.identity.principalKey, targetKey);
      if (opened === undefined) throw new ProxyError('session_not_found');
    }

    const http = target.kind === 'http-auto' || target.kind === 'streamable-http';
    const known = target.kind === 'http-auto' ? this.#deps.verdicts.get(target.url) : 'streamable-http';
    const eraTarget = UpstreamConnector.eraTarget(target);
    const { eras } = this.#deps;
    if (sessionId === undefined && clientEraOf(request.message, request.protocolVersion) === 'modern') {
      // A modern caller needs no session, unless the server speaks only the session era: then
      // the proxy holds one for it (pooled per token and client envelope).
      if (!http) return this.#viaPool(target, request);
      if (known === 'sse') return this.#viaPool({ ...target, kind: 'sse' }, request);
      if ((await eras.supportsModern(eraTarget, request.signal)) === false)
        return this.#viaPool(target, request);
    } else if (http && sessionId === undefined && eras.known(eraTarget).session === false) {
      // A session caller of a server that speaks only 2026-07-28: the proxy holds the session.
      return this.#viaBridge(target, request);
    }
    if (sessionId !== undefined && (!http || known === 'sse')) throw new ProxyError('session_not_found');
    if (!http) return this.#viaBridge(target, request);
    if (known === 'sse') return this.#viaBridge({ ...target, kind: 'sse' }, request);
    try {
      const result = await this.#viaStreamable(target, request, { opened, targetKey });
      if (known === undefined) this.#deps.verdicts.set(target.url, 'streamable-http');
      if (
        sessionId === undefined &&
        result.response &&
        clientEraOf(request.message, request.protocolVersion) === 'session' &&
        isModernOnlyRefusal(result.response)
      ) {
        // Refused the way a modern-only server refuses a session client: bridge it instead.
        eras.learn(eraTarget, 'session', false);
        eras.learn(eraTarget, 'modern', true);
        return this.#viaBridge(target, request);
      }
      return result;
    } catch (error) {
      if (known !== undefined || sessionId !== undefined || !invitesSseProbe(error)) throw error;
      // MCP back-compat: a 4xx to the POST means the server may speak the 2024-11-05 SSE transport.
      let result: ForwardResult;
      try {
        result = await this.#viaBridge({ ...target, kind: 'sse' }, request);
      } catch {
        throw error;
      }
      this.#deps.verdicts.set(target.url, 'sse');
      return result;
    }
  }

  async #viaStreamable(
    target: {
      readonly url: URL;
      readonly bearerToken?: string | undefined;
      readonly tools?: readonly string[] | undefined;
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
    const exchanged = await callOnce(this.#deps.http, {
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

  /**
   * A held upstream: `initialize` opens a stored session whose id goes back to the caller; any
   * other message without a session gets a one-off connection, closed after the answer.
   */
  async #viaBridge(target: UpstreamTarget, request: ForwardRequest): Promise<ForwardResult> {
    const open = async () =>
      new HeldSession(
        TargetResolver.key(target),
        await this.#deps.connector.open(target),
        toolFilterFor(target),
      );
    if (request.message.method === 'initialize') {
      const { sessions } = this.#deps;
      const { id, value } = await sessions.add(request.identity.principalKey, open);
      value.onClosed(() => void sessions.delete(id));
      try {
        return { ...(await this.#viaSession(value, request)), sessionId: id };
      } catch (error) {
        await sessions.delete(id);
        throw error;
      }
    }
    // A one-off stdio call is a process: it counts as a session while it lives (issue #14.7).
    const release =
      target.kind === 'stdio' ? await this.#deps.sessions.reserve(request.identity.principalKey) : noop;
    try {
      const oneOff = await open();
      try {
        return await this.#viaSession(oneOff, request);
      } finally {
        await oneOff.close();
      }
    } finally {
      release();
    }
  }

  /** A modern caller of a session-era server, through a pooled upstream session. */
  async #viaPool(target: UpstreamTarget, request: ForwardRequest): Promise<ForwardResult> {
    const { message, signal } = request;
    if (!isRequest(message)) return {}; // cancellation is the caller closing its request
    const ctx = { ownerId: request.identity.principalKey, target, targetKey: TargetResolver.key(target) };
    const session = await this.#deps.pool.session(ctx, message);
    const response = await this.#deps.pool
      .prepare(session, message)
      .call({ timeoutMs: this.#deps.timeoutMs, signal });
    return { response };
  }

  async #viaSession(session: HeldSession, request: ForwardRequest): Promise<ForwardResult> {
    const { message, signal } = request;
    if (!isRequest(message)) {
      await session.send(message);
      return { protocolVersion: session.upstream.protocolVersion };
    }
    const response = await session.call(message, { timeoutMs: this.#deps.timeoutMs, signal });
    return { response, protocolVersion: session.upstream.protocolVersion };
  }
}
