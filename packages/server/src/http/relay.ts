/**
 * @module http/relay
 * Any instance serves any request (issue 19). A request naming a proxy-held session (a `mcpp-`
 * session id on `/mcp` or `POST /proxy`) or an input round's `requestState` handle that another
 * instance holds is relayed to that instance, whole, and its answer streams back chunk by chunk:
 * JSON answers, answer event streams (progress, logs, server→client requests), the GET stream.
 * The decision is taken here, once, before any surface runs; the surfaces never know.
 *
 * The wire is the shared store's pub/sub: each instance listens on its own channel. The receiving
 * instance has authenticated the caller and counted it against its limits; the relayed request
 * carries the principal, never the caller's proxy credential (instances trust each other through
 * the store they share). The owner runs it through its own routes (`inject`) as if it had come
 * in there, with that principal: the session's binding to its principal is checked as always.
 *
 * Nobody may wait on an owner that is gone, and nobody is told "not found" by one that is not:
 * the owner acknowledges within {@link ACK_TIMEOUT_MS} and keeps saying so every
 * `KEEPALIVE_MS` while the exchange runs, says `fail` whenever it gives an exchange up, and
 * both sides watch each other's heartbeat. A request whose owner's heartbeat has expired goes on
 * locally, where its session is simply not found (404, MCP's signal to start a new session); one
 * whose owner is alive but did not answer (or went quiet, or gave up) is answered
 * `relay_interrupted` (503, retry), since its session still exists; so is one whose owner
 * cannot be looked up (the store down): only a store that answers "nobody" means not found.
 *
 * This file holds the decision, the channel and the bookkeeping of exchanges; the relaying
 * side of one exchange is http/relay-outgoing.ts, the owner's side http/relay-serving.ts, and
 * what crosses between them http/relay-wire.ts.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { handleTagOf } from '../eras/input-rounds.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { SessionOwnership } from '../sessions/ownership.ts';
import { PROXY_SESSION_PREFIX } from '../sessions/store.ts';
import type { Store } from '../store/store.ts';
import { MAX_MESSAGE_AGE_MS, type RelayBox } from './relay-box.ts';
import { InFlightBytes } from './relay-credit.ts';
import { type Outgoing, type RelayingSide, relayTo } from './relay-outgoing.ts';
import { RELAY_LIMITS, type RelayLimits, RelayQuota, relayInterrupted } from './relay-quota.ts';
import { RelaySenders } from './relay-senders.ts';
import { type Admission, type Incoming, type OwnerSide, serveRelayed } from './relay-serving.ts';
import {
  decodeRelayMessage,
  encodeRelayMessage,
  type Inject,
  RELAY_HEADER,
  type RelayMessage,
} from './relay-wire.ts';

export { ACK_TIMEOUT_MS } from './relay-outgoing.ts';
export type { Inject, InjectedAnswer } from './relay-wire.ts';
export { LIVENESS_MS } from './relay-wire.ts';

/** How often {@link Relay.quiet} looks at the exchanges running here. */
const QUIET_POLL_MS = 50;
/** Longest proxy-held session id looked up in the store (the proxy issues 29 characters). */
const MAX_SESSION_ID = 128;

/** What the relay needs. */
export interface RelayDeps {
  /** A namespaced view of the shared store (its pub/sub carries the exchanges). */
  readonly store: Store;
  readonly ownership: SessionOwnership;
  readonly inject: Inject;
  /** Hears store failures (throttled by the caller: a Redis that is down fails every lookup). */
  readonly onError: (error: Error) => void;
  /** A client span per relay hop, whose context the owner's server span continues (issue 21). */
  readonly tracing?: Tracing;
  /** Seals every message (`SESSION_SECRET` set): unsealed or unopenable ones are dropped. */
  readonly box?: RelayBox | undefined;
  /** Bounds other than {@link RELAY_LIMITS} (tests). */
  readonly limits?: Partial<RelayLimits> | undefined;
}

/** Where a request must run, when not necessarily here. */
type Destination = { readonly session: string } | { readonly instance: string };

/** Relays requests for sessions held elsewhere, and runs those relayed here. */
export class Relay {
  readonly #deps: RelayDeps;
  readonly #outgoing = new Map<string, Outgoing>();
  /** Exchanges running here for another instance, by id. */
  readonly #incoming = new Map<string, Incoming>();
  /** Relayed requests not yet admitted by {@link Relay.trusting}, by exchange. */
  readonly #admitted = new Map<string, Admission>();
  /** Sealed opens heard, per sending instance: one replayed within its freshness is not run again. */
  readonly #senders: RelaySenders;
  /** This process's boot nonce and the number of its last sealed open (the owners' replay check). */
  readonly #boot = randomBytes(12).toString('base64url');
  #opens = 0;
  /** Requests running here for another instance: never relayed again. */
  readonly #relayed = new WeakSet<FastifyRequest>();
  #unsubscribe: (() => Promise<void>) | undefined;
  /** What this relay's exchanges share, on either side. */
  readonly #relaying: RelayingSide;
  readonly #owning: OwnerSide;

  constructor(deps: RelayDeps) {
    this.#deps = deps;
    const send = (instance: string, message: RelayMessage, data?: Buffer) =>
      this.#send(instance, message, data);
    const { ownership, onError, tracing, inject } = deps;
    const limits = { ...RELAY_LIMITS, ...deps.limits };
    this.#senders = new RelaySenders({ maxSenders: limits.maxRelaySenders, keepMs: 2 * MAX_MESSAGE_AGE_MS });
    const quota = new RelayQuota(limits);
    this.#relaying = { ownership, onError, tracing, outgoing: this.#outgoing, send, quota };
    const { incoming, admitted } = { incoming: this.#incoming, admitted: this.#admitted };
    const inFlight = new InFlightBytes(limits.inFlightBytes);
    // The owner's exchanges are counted apart from those relayed out (each side has its bounds).
    const serving = new RelayQuota(limits);
    this.#owning = { ownership, inject, incoming, admitted, send, limits, inFlight, quota: serving };
  }

  /** Listens on this instance's channel. */
  async start(): Promise<void> {
    const channel = this.#channelOf(this.#deps.ownership.instanceId);
    this.#unsubscribe = await this.#deps.store.subscribe(
      channel,
      (text) => this.#hear(channel, text),
      // Messages published while the subscription was down are lost: what was under way ends.
      // The store itself may have restarted empty: this instance's claims are written again.
      () => {
        this.#deps.ownership.resync();
        void this.#abandonAll();
      },
    );
  }

  /**
   * Wraps the scope's authentication hook: a request the relay runs for another instance comes
   * in with the principal that instance authenticated (and no credential); any other goes
   * through `authenticate`.
   */
  trusting(
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void,
  ): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
    return (request, reply, done) => {
      const exchange = request.headers[RELAY_HEADER];
      const admission = typeof exchange === 'string' ? this.#admitted.get(exchange) : undefined;
      if (admission === undefined) {
        authenticate(request, reply, done);
        return;
      }
      this.#admitted.delete(exchange as string);
      this.#relayed.add(request);
      admission.responds(reply.raw);
      request.identity = admission.principal;
      request.credentialInAuthorization = false;
      done();
    };
  }

  /**
   * The one decision (a `preHandler`, after authentication and limits): a request for a session
   * or input round another live instance holds is relayed there; everything else goes on here.
   * Stateless requests cost a header and a property lookup.
   */
  readonly hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const destination = this.#destinationOf(request);
    if (destination === undefined || this.#relayed.has(request)) {
      done();
      return;
    }
    this.#route(request, reply, destination).then(
      (relayed) => {
        if (!relayed) done();
      },
      (error: unknown) => done(error as Error),
    );
  };

  /**
   * An `onSend` hook: a proxy-held session id leaving this instance for the first time is
   * claimed in the store before the caller can use it anywhere else.
   */
  readonly claim = (
    _request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: Error | null, payload: unknown) => void,
  ): void => {
    const id = reply.getHeader('mcp-session-id');
    const { ownership } = this.#deps;
    const claimed =
      typeof id === 'string' && id.startsWith(PROXY_SESSION_PREFIX) && ownership.holds(id)
        ? ownership.claim(id)
        : undefined;
    if (claimed === undefined) {
      done(null, payload);
      return;
    }
    claimed.then(
      () => done(null, payload),
      (error: Error) => {
        // The session works here; only a request for it landing elsewhere will not find it.
        this.#deps.onError(error);
        done(null, payload);
      },
    );
  };

  /**
   * Resolves once no exchange relayed here by another instance is running, or after `boundMs`
   * (a drain: such an exchange has no connection of its own for the drain to wait on).
   */
  async quiet(boundMs: number): Promise<void> {
    const until = performance.now() + boundMs;
    while (this.#incoming.size > 0 && performance.now() < until)
      await new Promise((resolve) => setTimeout(resolve, QUIET_POLL_MS));
  }

  /** Ends every exchange under way (shutdown); the relaying instances hear `fail`. */
  async close(): Promise<void> {
    await this.#abandonAll();
    await this.#unsubscribe?.().catch(() => {});
    this.#unsubscribe = undefined;
  }

  /** Where `request` must run, if it names proxy-held state; undefined for stateless traffic. */
  #destinationOf(request: FastifyRequest): Destination | undefined {
    const body = request.body;
    // POST /proxy names its session in the envelope first, then in the header, as /mcp does.
    const named =
      typeof body === 'object' && body !== null && 'mcp_session_id' in body
        ? (body as { mcp_session_id?: unknown }).mcp_session_id
        : request.headers['mcp-session-id'];
    // A caller writes the id: one longer than any the proxy issues is simply not found here.
    if (typeof named === 'string')
      return named.startsWith(PROXY_SESSION_PREFIX) && named.length <= MAX_SESSION_ID
        ? { session: named }
        : undefined;
    if (typeof body !== 'object' || body === null) return undefined;
    for (const message of Array.isArray(body) ? (body as unknown[]) : [body]) {
      const params = (message as { params?: unknown } | null)?.params;
      if (typeof params !== 'object' || params === null) continue;
      const tag = handleTagOf((params as { requestState?: unknown }).requestState);
      if (tag !== undefined) return { instance: tag };
    }
    return undefined;
  }

  /** Relays `request` when its state lives on another live instance; true when it did. */
  async #route(request: FastifyRequest, reply: FastifyReply, destination: Destination): Promise<boolean> {
    const { ownership } = this.#deps;
    let owner: string | undefined;
    try {
      if ('session' in destination) {
        if (ownership.holds(destination.session)) return false;
        owner = await ownership.ownerOf(destination.session);
      } else if (
        destination.instance !== ownership.instanceId &&
        (await ownership.alive(destination.instance))
      ) {
        owner = destination.instance;
      }
    } catch (error) {
      // Without the store nobody can say where the session is: it may well live on another
      // instance, and "not found" would make its client drop it (review 7, RELAY-2). Retry.
      this.#deps.onError(error as Error);
      throw relayInterrupted();
    }
    if (owner === undefined) return false;
    return relayTo(this.#relaying, request, reply, owner);
  }

  #hear(channel: string, received: string): void {
    const { box } = this.#deps;
    const heard = decodeRelayMessage(channel, received, box);
    if (heard === undefined) return;
    const { message, data } = heard;
    if (message.k === 'open') {
      if (message.n !== 0) return;
      // A sealed open replayed within its freshness is dropped unheard (its exchange may run);
      // one from a sender the memory has no room for (or unnumbered) is refused: forgetting a
      // fresh sender would let its opens be replayed (review 7 RELAY-6, review 8 SHARED-1).
      const verdict = box === undefined ? 'fresh' : this.#senders.hear(message);
      if (verdict === 'replay') return;
      void serveRelayed(this.#owning, message, verdict === 'fresh');
    } else if (message.k === 'cancel' || message.k === 'got') this.#incoming.get(message.x)?.hear(message);
    else this.#outgoing.get(message.x)?.on(message, data);
  }

  /** Ends every exchange under way: callers here are told to retry, relaying instances hear `fail`. */
  async #abandonAll(): Promise<void> {
    for (const outgoing of [...this.#outgoing.values()]) outgoing.abandon();
    await Promise.all([...this.#incoming.values()].map((incoming) => incoming.giveUp()));
  }

  #send(instance: string, message: RelayMessage, data?: Buffer): Promise<void> {
    const channel = this.#channelOf(instance);
    const { box } = this.#deps;
    // A sealed open carries this boot's next number (the owner's replay check, per sender).
    const sent =
      message.k === 'open' && box !== undefined
        ? { ...message, boot: this.#boot, seq: ++this.#opens }
        : message;
    return this.#deps.store.publish(channel, encodeRelayMessage(channel, sent, data, box));
  }

  #channelOf(instance: string): string {
    return `to:${instance}`;
  }
}
