/**
 * @module forwarding/forwarder
 * One JSON-RPC message to one upstream and its answer back: the engine behind POST /proxy.
 * Streamable HTTP upstreams need no proxy state (the caller carries `Mcp-Session-Id`); legacy
 * SSE upstreams get a proxy-held stream behind an opaque proxy session id.
 */
import type { TokenIdentity } from '../auth/tokens.ts';
import type { EgressGuard } from '../egress/types.ts';
import { ProxyError } from '../errors.ts';
import {
  isRequest,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../jsonrpc.ts';
import { HeldSession } from '../sessions/held-session.ts';
import { PROXY_SESSION_PREFIX, type SessionStore } from '../sessions/store.ts';
import { RequestCorrelator } from '../upstream/exchange.ts';
import type { UpstreamHttp } from '../upstream/http.ts';
import { SseTransport } from '../upstream/sse.ts';
import { StreamableHttpTransport } from '../upstream/streamable-http.ts';
import type { TransportVerdicts } from '../upstream/verdicts.ts';
import type { TRANSPORT_CHOICES } from './envelope.ts';

/** What a caller asks to forward. */
export interface ForwardRequest {
  readonly identity: TokenIdentity;
  readonly url: string;
  readonly bearerToken?: string | undefined;
  readonly sessionId?: string | undefined;
  readonly protocolVersion?: string | undefined;
  readonly transport: (typeof TRANSPORT_CHOICES)[number];
  readonly message: JsonRpcRequest | JsonRpcNotification;
  /** Aborted when the caller goes away. */
  readonly signal: AbortSignal;
}

/** What came back. */
export interface ForwardResult {
  /** The upstream's response; absent for notifications (HTTP 202). */
  readonly response?: JsonRpcResponse;
  /** Session id to hand back to the caller (the upstream's, or a proxy-held one). */
  readonly sessionId?: string | undefined;
  readonly protocolVersion?: string | undefined;
  /** Host of the upstream, for the access log. */
  readonly targetHost: string;
}

/** Collaborators of the forwarder. */
export interface ForwarderDeps {
  readonly guard: EgressGuard;
  readonly http: UpstreamHttp;
  readonly sessions: SessionStore<HeldSession>;
  readonly verdicts: TransportVerdicts;
  readonly timeoutMs: number;
}

/** Forwards single messages to upstream MCP servers. */
export class Forwarder {
  readonly #deps: ForwarderDeps;

  constructor(deps: ForwarderDeps) {
    this.#deps = deps;
  }

  /** Forwards one message and returns the upstream's answer. */
  async forward(request: ForwardRequest): Promise<ForwardResult> {
    const url = await this.#deps.guard.vet(request.url);
    const targetHost = url.host;
    const { sessionId } = request;

    if (sessionId?.startsWith(PROXY_SESSION_PREFIX)) {
      const held = this.#deps.sessions.get(sessionId, request.identity.id);
      if (!held || held.closed) throw new ProxyError('session_not_found');
      if (held.url.href !== url.href) {
        throw new ProxyError('session_not_found', 'This proxy session belongs to another MCP server URL.');
      }
      return { ...(await this.#viaHeld(held, request)), sessionId, targetHost };
    }

    const known = request.transport === 'auto' ? this.#deps.verdicts.get(url) : request.transport;
    if (known === 'sse') return { ...(await this.#viaSse(url, request)), targetHost };
    try {
      const result = await this.#viaStreamable(url, request);
      if (known === undefined) this.#deps.verdicts.set(url, 'streamable-http');
      return { ...result, targetHost };
    } catch (error) {
      if (known !== undefined || sessionId !== undefined || !invitesLegacyProbe(error)) throw error;
      // MCP back-compat: a 4xx to the POST means the server may speak the 2024-11-05 SSE transport.
      let result: Omit<ForwardResult, 'targetHost'>;
      try {
        result = await this.#viaSse(url, request);
      } catch {
        throw error;
      }
      this.#deps.verdicts.set(url, 'sse');
      return { ...result, targetHost };
    }
  }

  async #viaStreamable(url: URL, request: ForwardRequest): Promise<Omit<ForwardResult, 'targetHost'>> {
    const transport = new StreamableHttpTransport({
      url,
      http: this.#deps.http,
      bearerToken: request.bearerToken,
      sessionId: request.sessionId,
      protocolVersion: request.protocolVersion,
    });
    const correlator = new RequestCorrelator(transport, true);
    const { message, signal } = request;
    if (!isRequest(message)) {
      await correlator.notify(message, signal);
      return { sessionId: transport.sessionId, protocolVersion: transport.protocolVersion };
    }
    const response = await correlator.request(message, { timeoutMs: this.#deps.timeoutMs, signal });
    return { response, sessionId: transport.sessionId, protocolVersion: transport.protocolVersion };
  }

  /**
   * Legacy SSE: `initialize` opens a held session whose id goes back to the caller; any other
   * message without a session gets a one-off stream, closed after the answer.
   */
  async #viaSse(url: URL, request: ForwardRequest): Promise<Omit<ForwardResult, 'targetHost'>> {
    const open = async () => {
      const transport = new SseTransport({
        url,
        http: this.#deps.http,
        bearerToken: request.bearerToken,
        handshakeTimeoutMs: this.#deps.timeoutMs,
      });
      await transport.start();
      return new HeldSession(url, transport);
    };
    if (request.message.method === 'initialize') {
      const { sessions } = this.#deps;
      const { id, value } = await sessions.add(request.identity.id, open);
      value.onClosed = () => void sessions.delete(id);
      try {
        return { ...(await this.#viaHeld(value, request)), sessionId: id };
      } catch (error) {
        await sessions.delete(id);
        throw error;
      }
    }
    const oneOff = await open();
    try {
      return await this.#viaHeld(oneOff, request);
    } finally {
      await oneOff.close();
    }
  }

  async #viaHeld(held: HeldSession, request: ForwardRequest): Promise<Omit<ForwardResult, 'targetHost'>> {
    const { message, signal } = request;
    if (!isRequest(message)) {
      await held.correlator.notify(message, signal);
      return { protocolVersion: held.transport.protocolVersion };
    }
    const response = await held.correlator.request(message, { timeoutMs: this.#deps.timeoutMs, signal });
    return { response, protocolVersion: held.transport.protocolVersion };
  }
}

function invitesLegacyProbe(error: unknown): boolean {
  return (
    ProxyError.is(error) &&
    error.code === 'upstream_rejected' &&
    [400, 404, 405].includes(Number(error.data.upstreamStatus))
  );
}
