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
import {
  isRequest,
  type JsonObject,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../jsonrpc.ts';
import { toolFilterFor } from '../policy/tool-filter.ts';
import type { HeldSession } from '../sessions/held-session.ts';
import { PooledCall } from '../sessions/modern-pool.ts';
import type { SessionStore } from '../sessions/store.ts';
import { TtlCache } from '../ttl-cache.ts';
import { PRODUCT_NAME, VERSION } from '../version.ts';

/**
 * After a member failed to open for a principal, its next requests get the same failure for this
 * long without opening: a down or refusing member must not spend the principal's session budget
 * on every list, call and warm-up until its healthy members are refused too.
 */
const FAILED_OPEN_BACKOFF_MS = 10_000;
/** At most this many failed opens remembered (the oldest forgotten first). */
const MAX_FAILED_OPENS = 10_000;
/** Failures of the proxy's own budgets, not the member's: the next request may well succeed. */
const NOT_REMEMBERED: ReadonlySet<string> = new Set(['rate_limited', 'session_limit']);

/** What the proxy declares to members, as their client: what a virtual server's client is asked. */
const MEMBER_CLIENT_CAPABILITIES = { sampling: {}, elicitation: { form: {} }, roots: {} };

/** What member sessions need. */
export interface MemberSessionsDeps {
  readonly sessions: SessionStore<HeldSession>;
  /** Opens and stores a held session (dispatch/held-sessions.ts `HeldSessions.open`). */
  readonly open: (owner: SessionOwner, target: UpstreamTarget) => Promise<OpenedSession>;
  /** How long the handshake and each request may take. */
  readonly timeoutMs: number;
  /** Clock in milliseconds (tests inject one); default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** Takes what a member sends outside any request: true when taken (or nothing to do). */
export type MemberListener = (
  ownerId: string,
  member: string,
  message: JsonRpcMessage,
  reply: (response: JsonRpcResponse) => Promise<void>,
) => boolean;

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
  /** Pool key → the error its last open failed with, for a short back-off. */
  readonly #failed: TtlCache<string, unknown>;
  #seq = 0;
  #listener: MemberListener | undefined;

  /** How long the handshake and each request may take. */
  get timeoutMs(): number {
    return this.#deps.timeoutMs;
  }

  constructor(deps: MemberSessionsDeps) {
    this.#deps = deps;
    this.#failed = new TtlCache({
      ttlMs: FAILED_OPEN_BACKOFF_MS,
      maxEntries: MAX_FAILED_OPENS,
      now: deps.now,
    });
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
    const failed = this.#failed.get(key);
    if (failed !== undefined) throw failed;
    let opening = this.#opening.get(key);
    if (!opening) {
      opening = this.#open(key, owner, target)
        .catch((error: unknown) => {
          // Only the member's own failures (a caller going away is no ProxyError).
          if (error instanceof ProxyError && !NOT_REMEMBERED.has(error.code)) this.#failed.set(key, error);
          throw error;
        })
        .finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  /**
   * One request to a member, answered under the caller's id. The member's tool allowlist (its
   * server's, narrowed by the caller's grants: the resolved target's `tools`) applies. `related`
   * may take what the member sends for the request meanwhile (progress, a log message, a server
   * request, with the caller's ids), and is given how to answer the member.
   */
  async call(
    owner: SessionOwner,
    target: UpstreamTarget,
    message: JsonRpcRequest,
    signal?: AbortSignal,
    related?: (message: JsonRpcMessage, reply: (response: JsonRpcResponse) => Promise<void>) => boolean,
  ): Promise<JsonRpcResponse> {
    const { session } = await this.session(owner, target);
    const call = new PooledCall(session, message, ++this.#seq, toolFilterFor(target));
    const reply = (response: JsonRpcResponse) => session.send(response);
    return call.call({ timeoutMs: this.#deps.timeoutMs, signal }, related && ((m) => related(m, reply)));
  }

  /**
   * Where what a member sends outside any request goes (virtual-servers.ts: the principal's GET
   * streams), told the session's owner and member, and how to answer the member.
   */
  listen(listener: MemberListener): void {
    this.#listener = listener;
  }

  async #open(key: string, owner: SessionOwner, target: UpstreamTarget): Promise<MemberSession> {
    const { id, session } = await this.#deps.open(owner, target);
    session.onClosed(() => {
      if (this.#ids.get(key) === id) this.#ids.delete(key);
    });
    const member = target.name ?? '';
    const reply = (response: JsonRpcResponse) => session.send(response);
    // Never kept for later (no stream will take a session's backlog): a notification nobody
    // listens to is dropped, a server request is refused for the client.
    session.attachStandalone({
      deliver: (message) => this.#listener?.(owner.ownerId, member, message, reply) ?? !isRequest(message),
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
   * MCP's handshake, the proxy as the client. It declares what a virtual server's client may be
   * asked on its answer stream (member-requests.ts): a client that cannot answer (POST /proxy,
   * a 2026-07-28 client) gets the member's request refused for it, as on any held session.
   */
  async #handshake(session: HeldSession): Promise<JsonObject> {
    const request: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: `mcpp-init-${++this.#seq}`,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_SESSION_VERSION,
        capabilities: MEMBER_CLIENT_CAPABILITIES,
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
