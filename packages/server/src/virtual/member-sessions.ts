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
const MEMBER_CLIENT_CAPABILITIES = { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } };

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
  /** Every session opened here, from its opening on (a reload may judge it before its handshake ends). */
  readonly #mine = new WeakSet<HeldSession>();
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

  /**
   * The member's session for this owner, opened and initialized on first use. A session on the
   * broker's credential reads it again first (a refresh or a new sign-in reaches it); one whose
   * sign-in the user ended since it opened is closed and a new one opened (review7 CREDS-1).
   */
  async session(owner: SessionOwner, target: UpstreamTarget): Promise<MemberSession> {
    const key = MemberSessions.#key(owner, target);
    const held = this.#held(key, owner);
    if (held && (await held.session.renewed())) return held;
    // A failure is remembered for the token it was met with: a refusal of none (a 401 before the
    // sign-in) must not stand in the way of the token the sign-in brings.
    const failedKey = `${key}\n${tokenHash(target)}`;
    const failed = this.#failed.get(failedKey);
    if (failed !== undefined) throw failed;
    let opening = this.#opening.get(key);
    if (!opening) {
      opening = this.#open(key, owner, target)
        .catch((error: unknown) => {
          // Only the member's own failures (a caller going away is no ProxyError).
          if (error instanceof ProxyError && !NOT_REMEMBERED.has(error.code))
            this.#failed.set(failedKey, error);
          throw error;
        })
        .finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  /**
   * The owner's session to the member on the broker's credential, if one is open, reads its
   * credential again: when the user ended the sign-in it was opened with, it closes. For a request
   * that does not reach it (the vault holds no token now: a sign-in is asked for instead), so what
   * authenticated with the ended token (an HTTP+SSE stream, a WebSocket) does not live on.
   */
  async renew(owner: SessionOwner, target: UpstreamTarget): Promise<void> {
    const held = this.#held(MemberSessions.#key(owner, target, true), owner);
    await held?.session.renewed();
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

  /**
   * Whether `session` is a member session: each request through it applies its caller's tool
   * grant of the moment (the target's `tools`), so a reload that changes only a tool grant
   * leaves it open, with what the client set up through it (a subscription, a log level).
   */
  holds(session: HeldSession): boolean {
    return this.#mine.has(session);
  }

  /** The open, initialized session under `key`, if any. */
  #held(key: string, owner: SessionOwner): MemberSession | undefined {
    const id = this.#ids.get(key);
    const session = id === undefined ? undefined : this.#deps.sessions.get(id, owner.ownerId);
    const initialized = session && !session.closed ? this.#initialized.get(session) : undefined;
    return session && initialized ? { session, initialized } : undefined;
  }

  /**
   * The pool key. A session on the broker's credential is one per owner and member, whatever
   * token it holds now: it reads the token at each request and ends with the sign-in (review7
   * CREDS-1), where a key by token left the old session open beside a new one at each refresh or
   * disconnect. Any other credential (the operator's) is part of the key: a session opened with
   * one token never carries another's.
   */
  static #key(
    owner: SessionOwner,
    target: UpstreamTarget,
    brokered = MemberSessions.#brokered(target),
  ): string {
    return `${owner.ownerId}\n${TargetResolver.key(target)}\n${brokered ? 'broker' : tokenHash(target)}`;
  }

  static #brokered(target: UpstreamTarget): boolean {
    return target.kind !== 'stdio' && target.credential !== undefined;
  }

  async #open(key: string, owner: SessionOwner, target: UpstreamTarget): Promise<MemberSession> {
    const { id, session } = await this.#deps.open(owner, target);
    this.#mine.add(session);
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

/** A hash of the token the target carries now ('' when none). */
function tokenHash(target: UpstreamTarget): string {
  const token = target.kind === 'stdio' ? undefined : target.bearerToken;
  return createHash('sha256')
    .update(token ?? '')
    .digest('base64url');
}
