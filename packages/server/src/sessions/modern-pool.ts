/**
 * @module sessions/modern-pool
 * Upstream sessions held for modern (2026-07-28) clients of session-era servers. A modern
 * client has no session of its own, so the proxy keeps one per proxy token, target and client
 * envelope (capabilities and identity: a session-era server decides from `initialize` what it
 * may ask the client, so only requests that declare the same ones may share a session), and URL
 * grant (a principal's tokens may each carry their own).
 * Requests from different callers meet in one session, so each is sent up under an id (and a
 * progress token) of the pool's own and mapped back on the way down.
 */
import { createHash } from 'node:crypto';
import { META, metaOf } from '../eras/classify.ts';
import type { JsonObject, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.ts';
import { isResponse } from '../jsonrpc.ts';
import type { ToolFilter } from '../policy/tool-filter.ts';
import type { ReachTest } from '../upstream/http.ts';
import type { HeldSession, MessageSink, SessionCredential } from './held-session.ts';
import type { SessionStore } from './store.ts';

/**
 * What the pool needs of a target (the dispatch layer's `UpstreamTarget` fits): its upstream
 * credential, if any, is part of the pool key, unless it is the broker's (`credential`: the
 * session reads it at each request); `kind` only makes the shape a target's.
 */
export interface PoolTarget {
  readonly kind: string;
  readonly bearerToken?: string | undefined;
  readonly credential?: SessionCredential | undefined;
  /**
   * The digest of the caller's URL grant, if one judges its reach: part of the pool key, as the
   * sessions of a principal's tokens with different grants are not shared (review14 URLPATTERN-2).
   */
  readonly urlGrant?: string | undefined;
  /** The caller's reach test: a reused session judges its hops by the latest caller's (session-reach.ts). */
  readonly mayReach?: ReachTest | undefined;
}

/** What the pool needs. */
export interface ModernPoolDeps<T extends PoolTarget> {
  readonly sessions: SessionStore<HeldSession>;
  /**
   * Opens and stores a held session (the one opening path, dispatch/held-sessions.ts, passed in
   * so this layer does not reach up to the connector). The store forgets it when it closes.
   */
  readonly open: (
    owner: { readonly ownerId: string; readonly rateClass?: string | undefined },
    target: T,
  ) => Promise<{ readonly id: string; readonly session: HeldSession }>;
}

/** Where a pooled session is wanted. */
export interface PoolContext<T extends PoolTarget = PoolTarget> {
  readonly ownerId: string;
  /** The caller's rate class: a session opened for it is admitted under it. */
  readonly rateClass?: string | undefined;
  readonly target: T;
  readonly targetKey: string;
}

/** Pooled upstream sessions for modern clients. */
export class ModernSessionPool<T extends PoolTarget = PoolTarget> {
  readonly #deps: ModernPoolDeps<T>;
  /** Pool key → id of the session in the store. */
  readonly #ids = new Map<string, string>();
  readonly #opening = new Map<string, Promise<HeldSession>>();
  #seq = 0;

  constructor(deps: ModernPoolDeps<T>) {
    this.#deps = deps;
  }

  /**
   * The session for this caller, target and client envelope; opened on first use. A session on
   * the broker's credential reads it again first (a refresh or a new sign-in reaches it); one
   * whose sign-in the user ended since it opened closes, and a new one opens (review7 CREDS-2).
   */
  async session(ctx: PoolContext<T>, message: JsonRpcRequest): Promise<HeldSession> {
    const meta = metaOf(message);
    // The upstream credential is part of the key: a session opened with one caller's token
    // must never carry another's requests. The broker's is one per owner (the key's first part)
    // whatever token it holds now: keyed by token, each refresh or disconnect left the old
    // session running upstream beside a new one.
    const credential = ctx.target.credential !== undefined ? 'broker' : (ctx.target.bearerToken ?? '');
    const envelope = JSON.stringify([
      meta[META.clientCapabilities] ?? {},
      meta[META.clientInfo] ?? {},
      credential,
      ctx.target.urlGrant ?? null,
    ]);
    const key = `${ctx.ownerId}\n${ctx.targetKey}\n${createHash('sha256').update(envelope).digest('base64url')}`;
    const id = this.#ids.get(key);
    const existing = id === undefined ? undefined : this.#deps.sessions.get(id, ctx.ownerId);
    if (existing && !existing.closed && (await existing.renewed())) {
      // Same grant digest (the key): the latest caller's test judges the same URLs by today's grants.
      existing.reach?.judgeBy(ctx.target.mayReach);
      return existing;
    }
    let opening = this.#opening.get(key);
    if (!opening) {
      opening = this.#open(key, ctx).finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  async #open(key: string, ctx: PoolContext<T>): Promise<HeldSession> {
    const { id, session } = await this.#deps.open(ctx, ctx.target);
    this.#ids.set(key, id);
    session.onClosed(() => {
      if (this.#ids.get(key) === id) this.#ids.delete(key);
    });
    return session;
  }

  /**
   * One request through a pooled session, under ids of the pool's own. `filter` is this
   * caller's tool allowlist (the key above holds no grant: the filter travels with each request).
   */
  prepare(session: HeldSession, message: JsonRpcRequest, filter: ToolFilter | undefined): PooledCall {
    return new PooledCall(session, message, ++this.#seq, filter);
  }
}

/** A request sent through a shared session, its ids mapped out and back. */
export class PooledCall {
  readonly #session: HeldSession;
  readonly #original: JsonRpcRequest;
  readonly #upstream: JsonRpcRequest;
  readonly #token: { readonly original: unknown; readonly pooled: string } | undefined;
  readonly #filter: ToolFilter | undefined;
  #sink: MessageSink | undefined;

  constructor(session: HeldSession, message: JsonRpcRequest, seq: number, filter: ToolFilter | undefined) {
    this.#session = session;
    this.#filter = filter;
    this.#original = message;
    const meta = metaOf(message);
    let params = message.params;
    if (meta.progressToken !== undefined) {
      this.#token = { original: meta.progressToken, pooled: `mcpp-progress-${seq}` };
      params = { ...params, _meta: { ...meta, progressToken: this.#token.pooled } };
    }
    this.#upstream = { ...message, id: `mcpp-req-${seq}`, ...(params ? { params } : {}) };
  }

  /** Sends the request; what comes back for it goes to `sink` with the caller's ids. */
  async start(sink: MessageSink): Promise<void> {
    const mapped: MessageSink = {
      deliver: (message) => sink.deliver(this.#restore(message)),
      ...(sink.end ? { end: () => sink.end?.() } : {}),
    };
    this.#sink = mapped;
    await this.#session.request(this.#upstream, mapped, this.#filter);
  }

  /**
   * Sends the request and resolves with its response (POST /proxy, JSON answers); `related`
   * may take what the server sends for it meanwhile (progress, server requests), with the
   * caller's ids.
   */
  async call(
    options: { timeoutMs: number; signal?: AbortSignal | undefined },
    related?: (message: JsonRpcMessage) => boolean,
  ): Promise<JsonRpcResponse> {
    const restored = related && ((message: JsonRpcMessage) => related(this.#restore(message)));
    const response = await this.#session.call(this.#upstream, options, this.#filter, restored);
    return this.#restore(response) as JsonRpcResponse;
  }

  /** The caller left: cancel upstream. */
  abandon(): void {
    if (this.#sink) this.#session.abandon(this.#sink);
  }

  #restore(message: JsonRpcMessage): JsonRpcMessage {
    if (isResponse(message))
      return message.id === this.#upstream.id ? { ...message, id: this.#original.id } : message;
    if (!('method' in message) || !message.params) return message;
    const params: JsonObject = { ...message.params };
    if (this.#token && params.progressToken === this.#token.pooled)
      params.progressToken = this.#token.original;
    const meta = params._meta as JsonObject | undefined;
    if (meta && meta[META.subscriptionId] === this.#upstream.id) {
      params._meta = { ...meta, [META.subscriptionId]: this.#original.id };
    }
    return { ...message, params };
  }
}
