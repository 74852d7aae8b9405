/**
 * @module virtual/member-sessions
 * The upstream sessions a virtual server's members are reached through. The proxy is the MCP
 * client of each member: it opens one held session per principal, member and upstream
 * credential (through the one opening path, dispatch/held-sessions.ts, so the session caps,
 * admission and idle sweep apply), initializes it itself, and sends every caller's requests
 * through it under ids of its own. A session that ends is forgotten; the next request opens a
 * new one, so a member that comes back serves again.
 */
import { createHash } from 'node:crypto';
import type { UpstreamTarget } from '../dispatch/connector.ts';
import type { OpenedSession, SessionOwner } from '../dispatch/held-sessions.ts';
import { TargetResolver } from '../dispatch/targets.ts';
import { LATEST_SESSION_VERSION } from '../eras/classify.ts';
import { ProxyError } from '../errors.ts';
import type { JsonObject, JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.ts';
import { toolFilterFor } from '../policy/tool-filter.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import { PooledCall } from '../sessions/modern-pool.ts';
import type { SessionStore } from '../sessions/store.ts';
import { PRODUCT_NAME, VERSION } from '../version.ts';

/** What member sessions need. */
export interface MemberSessionsDeps {
  readonly sessions: SessionStore<HeldSession>;
  /** Opens and stores a held session (dispatch/held-sessions.ts `HeldSessions.open`). */
  readonly open: (owner: SessionOwner, target: UpstreamTarget) => Promise<OpenedSession>;
  /** How long the handshake and each request may take. */
  readonly timeoutMs: number;
}

/** A member's session, initialized, with what the member said of itself. */
export interface MemberSession {
  readonly session: HeldSession;
  /** The member's `initialize` result (capabilities, serverInfo, instructions). */
  readonly initialized: JsonObject;
}

/** Sessions to members, per principal, member and credential. */
export class MemberSessions {
  readonly #deps: MemberSessionsDeps;
  /** Pool key → id of the session in the store (entries leave when their session closes). */
  readonly #ids = new Map<string, string>();
  readonly #opening = new Map<string, Promise<MemberSession>>();
  readonly #initialized = new WeakMap<HeldSession, JsonObject>();
  #seq = 0;

  constructor(deps: MemberSessionsDeps) {
    this.#deps = deps;
  }

  /** The member's session for this owner, opened and initialized on first use. */
  async session(owner: SessionOwner, target: UpstreamTarget): Promise<MemberSession> {
    // The credential is part of the key: a session opened with one token never carries another's.
    const credential = 'bearerToken' in target && target.bearerToken !== undefined ? target.bearerToken : '';
    const key = `${owner.ownerId}\n${TargetResolver.key(target)}\n${createHash('sha256').update(credential).digest('base64url')}`;
    const id = this.#ids.get(key);
    const existing = id === undefined ? undefined : this.#deps.sessions.get(id, owner.ownerId);
    const initialized = existing && !existing.closed ? this.#initialized.get(existing) : undefined;
    if (existing && initialized) return { session: existing, initialized };
    let opening = this.#opening.get(key);
    if (!opening) {
      opening = this.#open(key, owner, target).finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  /**
   * One request to a member, answered under the caller's id. The member's tool allowlist (its
   * server's, narrowed by the caller's grants: the resolved target's `tools`) applies.
   */
  async call(
    owner: SessionOwner,
    target: UpstreamTarget,
    message: JsonRpcRequest,
    signal?: AbortSignal,
  ): Promise<JsonRpcResponse> {
    const { session } = await this.session(owner, target);
    const call = new PooledCall(session, message, ++this.#seq, toolFilterFor(target));
    return call.call({ timeoutMs: this.#deps.timeoutMs, signal });
  }

  async #open(key: string, owner: SessionOwner, target: UpstreamTarget): Promise<MemberSession> {
    const { id, session } = await this.#deps.open(owner, target);
    session.onClosed(() => {
      if (this.#ids.get(key) === id) this.#ids.delete(key);
    });
    try {
      const initialized = await this.#handshake(session);
      this.#initialized.set(session, initialized);
      this.#ids.set(key, id);
      return { session, initialized };
    } catch (error) {
      await session.close().catch(() => {});
      throw error;
    }
  }

  /**
   * MCP's handshake, the proxy as the client. It declares no client capabilities: sampling,
   * elicitation and roots are not routed to the virtual server's caller yet (docs/virtual-servers.md).
   */
  async #handshake(session: HeldSession): Promise<JsonObject> {
    const request: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: `mcpp-init-${++this.#seq}`,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_SESSION_VERSION,
        capabilities: {},
        clientInfo: { name: PRODUCT_NAME, version: VERSION },
      },
    };
    const response = await session.call(request, { timeoutMs: this.#deps.timeoutMs }, undefined);
    if (!('result' in response)) {
      throw new ProxyError('upstream_protocol_error', 'The MCP server refused to initialize.', {
        data: { upstreamCode: response.error.code },
      });
    }
    await session.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return response.result;
  }
}
