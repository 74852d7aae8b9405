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
 * {@link KEEPALIVE_MS} while the exchange runs, says `fail` whenever it gives an exchange up, and
 * both sides watch each other's heartbeat. A request whose owner's heartbeat has expired goes on
 * locally, where its session is simply not found (404, MCP's signal to start a new session); one
 * whose owner is alive but did not answer (or went quiet, or gave up) is answered
 * `relay_interrupted` (503, retry), since its session still exists.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { handleTagOf } from '../eras/input-rounds.ts';
import { ProxyError } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { SessionOwnership } from '../sessions/ownership.ts';
import { PROXY_SESSION_PREFIX } from '../sessions/store.ts';
import type { Store } from '../store/store.ts';
import { TtlCache } from '../ttl-cache.ts';
import { MAX_MESSAGE_AGE_MS, type RelayBox } from './relay-box.ts';
import {
  type Inject,
  type OpenMessage,
  RELAY_HEADER,
  type RelayMessage,
  relayedBody,
  relayedHeaders,
  relayedUrl,
  streamAnswer,
} from './relay-wire.ts';

export type { Inject, InjectedAnswer } from './relay-wire.ts';

/**
 * How long an owner has to acknowledge a relayed request; then its heartbeat is looked at: gone,
 * the request goes on here (not found); alive, the caller is told to retry.
 */
export const ACK_TIMEOUT_MS = 2_000;
/**
 * The owner acknowledges a relayed request only if its answer has not started by then: a fast
 * answer is its own acknowledgement (one message fewer each way).
 */
const ACK_AFTER_MS = 200;
/** While an exchange runs, the owner says so at least this often (an ack, unless a part went). */
const KEEPALIVE_MS = 2_000;
/**
 * An exchange the owner has been silent about this long is over: a pub/sub message was lost (or
 * the owner is stuck), and nobody else would end it.
 */
export const LIVENESS_MS = 4 * KEEPALIVE_MS;
/** What a caller whose relayed request was interrupted is told to wait before retrying. */
const RETRY_AFTER_SECONDS = 1;
/** How often {@link Relay.quiet} looks at the exchanges running here. */
const QUIET_POLL_MS = 50;
/** Bytes a relayed answer may queue for a slow caller before the exchange is given up. */
const MAX_QUEUED_BYTES = 4 * 1_048_576;
/** Longest proxy-held session id looked up in the store (the proxy issues 29 characters). */
const MAX_SESSION_ID = 128;
/** Exchanges each side keeps at once: beyond, a relay is refused (and answered "not found"). */
const MAX_EXCHANGES = 10_000;
/** What the relay needs. */
export interface RelayDeps {
  /** A namespaced view of the shared store (its pub/sub carries the exchanges). */
  readonly store: Store;
  readonly ownership: SessionOwnership;
  readonly inject: Inject;
  /** Hears store failures (throttled by the caller: a Redis that is down fails every lookup). */
  readonly onError: (error: Error) => void;
  /** False when no other instance can share the store (embedded SQLite or memory): never relays. */
  readonly active?: boolean;
  /** A client span per relay hop, whose context the owner's server span continues (issue 21). */
  readonly tracing?: Tracing;
  /** Seals every message (`SESSION_SECRET` set): unsealed or unopenable ones are dropped. */
  readonly box?: RelayBox | undefined;
}

/** Where a request must run, when not necessarily here. */
type Destination = { readonly session: string } | { readonly instance: string };

/** A relayed exchange, on the instance that received it. */
interface Outgoing {
  readonly owner: string;
  on(message: RelayMessage): void;
  /** Ends it (the relay closing or having missed messages): the caller is told to retry. */
  abandon(): void;
}

/** A relayed exchange, on its owner. */
interface Incoming {
  /** The owner gives the exchange up: it ends here and the relaying instance hears `fail`. */
  giveUp(): Promise<void>;
  /** The relaying side cancelled (its caller left): it ends here, nobody to tell. */
  cancel(): void;
}

/** A relayed request on its owner, until its route's hooks take it in. */
interface Admission {
  readonly principal: Principal;
  /** Hears the request's response object: a cancel closes it, as a caller leaving would. */
  readonly responds: (response: ServerResponse) => void;
}

/** Relays requests for sessions held elsewhere, and runs those relayed here. */
export class Relay {
  readonly #deps: RelayDeps;
  readonly #outgoing = new Map<string, Outgoing>();
  /** Exchanges running here for another instance, by id. */
  readonly #incoming = new Map<string, Incoming>();
  /** Relayed requests not yet admitted by {@link Relay.trusting}, by exchange. */
  readonly #admitted = new Map<string, Admission>();
  /** Exchanges opened here lately: a sealed `open` replayed within its freshness is not run again. */
  readonly #opened = new TtlCache<string, true>({
    ttlMs: 2 * MAX_MESSAGE_AGE_MS,
    maxEntries: MAX_EXCHANGES * 4,
  });
  /** Requests running here for another instance: never relayed again. */
  readonly #relayed = new WeakSet<FastifyRequest>();
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(deps: RelayDeps) {
    this.#deps = deps;
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
    const destination = this.#deps.active === false ? undefined : this.#destinationOf(request);
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
    const { ownership, active } = this.#deps;
    const claimed =
      active !== false && typeof id === 'string' && id.startsWith(PROXY_SESSION_PREFIX) && ownership.holds(id)
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
      // Without the store nobody can say where the session is: it is not here.
      this.#deps.onError(error as Error);
      return false;
    }
    if (owner === undefined) return false;
    if (this.#outgoing.size >= MAX_EXCHANGES) return false;
    return this.#relay(request, reply, owner);
  }

  /** Sends `request` to `owner` and answers with what comes back. */
  #relay(request: FastifyRequest, reply: FastifyReply, owner: string): Promise<boolean> {
    const raw = reply.raw;
    // A caller that left during the owner lookup has no `close` left to fire: relaying for it
    // would open an exchange (a GET stream, say) that nobody ever ends.
    if (raw.destroyed || request.socket.destroyed) return Promise.reject(new ProxyError('session_not_found'));
    const x = randomBytes(16).toString('base64url');
    const tracing = this.#deps.tracing;
    const span =
      tracing?.enabled === true ? tracing.client('relay', { 'mcp_proxy.relay.owner': owner }) : undefined;
    return new Promise<boolean>((resolve, reject) => {
      let body: PassThrough | undefined;
      let settled = false;
      const finish = () => {
        span?.end();
        settled = true;
        this.#outgoing.delete(x);
        clearTimeout(silence);
        stopWatching();
        raw.off('close', onCallerClose);
      };
      const cancel = () => void this.#send(owner, { k: 'cancel', x }).catch(() => {});
      /** The owner is gone (its heartbeat expired): the request goes on here, as not found. */
      const ownerGone = () => {
        if (settled) return;
        span?.end('relay_not_answered');
        finish();
        cancel();
        if (body === undefined) resolve(false);
        else body.destroy(new Error('the instance holding the session is gone'));
      };
      /**
       * The owner lives but did not see the exchange through: its session still exists there,
       * so the caller is told to retry, never that it is not found.
       */
      const interrupted = () => {
        if (settled) return;
        finish();
        cancel();
        if (body === undefined)
          reject(
            new ProxyError('relay_interrupted', undefined, {
              headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
              data: { retryAfterSeconds: RETRY_AFTER_SECONDS },
            }),
          );
        else body.destroy(new Error('the relayed exchange was interrupted'));
      };
      /** Nothing heard in time: only an expired heartbeat makes the owner gone. */
      const onSilence = () => {
        if (settled) return;
        const before = words;
        this.#deps.ownership.alive(owner).then(
          // A word that arrived during the look-up ends the silence.
          (alive) => words === before && (alive ? interrupted() : ownerGone()),
          (error: Error) => {
            this.#deps.onError(error);
            if (words === before) interrupted();
          },
        );
      };
      let silence = setTimeout(onSilence, ACK_TIMEOUT_MS);
      /** Messages heard from the owner about this exchange. */
      let words = 0;
      /** The owner spoke: it has {@link LIVENESS_MS} to speak again. */
      const heard = () => {
        words++;
        clearTimeout(silence);
        silence = setTimeout(onSilence, LIVENESS_MS);
      };
      const stopWatching = this.#deps.ownership.watch(owner, ownerGone);
      const onCallerClose = () => {
        if (settled || raw.writableFinished) return;
        finish();
        cancel();
        if (body === undefined) reject(new ProxyError('session_not_found'));
        else body.destroy();
      };
      raw.once('close', onCallerClose);
      this.#outgoing.set(x, {
        owner,
        abandon: interrupted,
        on: (message) => {
          if (settled) return;
          switch (message.k) {
            case 'ack':
              heard();
              return;
            case 'part': {
              heard();
              if (message.head !== undefined && message.end && body === undefined) {
                // A whole answer in one part (a JSON answer): sent as it is, with its length.
                finish();
                reply.code(message.head.status);
                for (const [name, value] of Object.entries(message.head.headers)) reply.header(name, value);
                reply.send(message.d === undefined ? undefined : Buffer.from(message.d, 'base64'));
                resolve(true);
                return;
              }
              if (message.head !== undefined && body === undefined) {
                body = new PassThrough();
                // However the answer stream ends here (the caller gone, Fastify giving up on it),
                // the owner stops producing it.
                body.once('close', () => {
                  if (settled) return;
                  finish();
                  cancel();
                });
                reply.code(message.head.status);
                for (const [name, value] of Object.entries(message.head.headers)) reply.header(name, value);
                reply.send(body);
                resolve(true);
              }
              if (body === undefined) return;
              if (message.d !== undefined) body.write(Buffer.from(message.d, 'base64'));
              if (message.end) {
                finish();
                body.end();
              } else if (body.writableLength > MAX_QUEUED_BYTES) {
                // The owner cannot be slowed down over pub/sub: a caller this slow loses the exchange.
                finish();
                cancel();
                body.destroy(new Error('the caller reads too slowly'));
              }
              return;
            }
            case 'fail':
              interrupted();
              return;
          }
        },
      });
      this.#send(owner, {
        k: 'open',
        x,
        from: this.#deps.ownership.instanceId,
        method: request.method as OpenMessage['method'],
        url: relayedUrl(request),
        headers:
          span === undefined ? relayedHeaders(request) : { ...relayedHeaders(request), ...span.headers() },
        ...(request.body === undefined ? {} : { body: JSON.stringify(relayedBody(request)) }),
        principal: request.identity as Principal,
      }).catch(interrupted);
    });
  }

  /** Runs a request relayed here by another instance and streams its answer back. */
  async #serve(open: OpenMessage): Promise<void> {
    const { x, from } = open;
    if (this.#incoming.size >= MAX_EXCHANGES || this.#incoming.has(x)) {
      await this.#send(from, { k: 'fail', x }).catch(() => {});
      return;
    }
    const controller = new AbortController();
    /** Whether the relaying side knows the exchange is over (its end, its `fail`, its cancel). */
    let told = false;
    let lastSent = performance.now();
    const send = async (message: RelayMessage): Promise<void> => {
      lastSent = performance.now();
      await this.#send(from, message);
    };
    // Every way the owner stops short says `fail`: the relaying side would otherwise wait on
    // an exchange that no longer runs (its caller hanging while both instances are up).
    const giveUp = async () => {
      controller.abort();
      if (told) return;
      told = true;
      await send({ k: 'fail', x }).catch(() => {});
    };
    this.#incoming.set(x, {
      giveUp,
      cancel: () => {
        told = true;
        controller.abort();
      },
    });
    // A cancel must reach the route as its caller leaving: `inject`'s own abort stops only
    // reading the answer once the request body has been read, and the route would run on.
    this.#admitted.set(x, {
      principal: open.principal,
      responds: (response) => {
        if (controller.signal.aborted) response.destroy();
        else controller.signal.addEventListener('abort', () => response.destroy(), { once: true });
      },
    });
    const stopWatching = this.#deps.ownership.watch(from, () => void giveUp());
    let started = false;
    const ack = setTimeout(() => {
      if (!started) void send({ k: 'ack', x }).catch(() => {});
    }, ACK_AFTER_MS);
    // The relaying side ends an exchange it hears nothing about for LIVENESS_MS.
    const keepAlive = setInterval(() => {
      if (performance.now() - lastSent >= KEEPALIVE_MS / 2) void send({ k: 'ack', x }).catch(() => {});
    }, KEEPALIVE_MS);
    try {
      const answer = await this.#deps.inject({
        method: open.method,
        url: open.url,
        headers: { ...open.headers, [RELAY_HEADER]: x },
        ...(open.body === undefined ? {} : { payload: open.body }),
        payloadAsStream: true,
        signal: controller.signal,
      });
      started = true;
      clearTimeout(ack);
      await streamAnswer(answer, x, send, controller.signal);
      told = true;
    } catch {
      await giveUp();
    } finally {
      clearTimeout(ack);
      clearInterval(keepAlive);
      this.#incoming.delete(x);
      this.#admitted.delete(x);
      stopWatching();
    }
  }

  #hear(channel: string, received: string): void {
    const { box } = this.#deps;
    const text = box === undefined ? received : box.open(channel, received);
    if (text === undefined) return;
    let message: RelayMessage;
    try {
      message = JSON.parse(text) as RelayMessage;
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || typeof message.x !== 'string') return;
    if (message.k === 'open') {
      if (box !== undefined) {
        if (this.#opened.get(message.x) !== undefined) return;
        this.#opened.set(message.x, true);
      }
      void this.#serve(message);
    } else if (message.k === 'cancel') this.#incoming.get(message.x)?.cancel();
    else this.#outgoing.get(message.x)?.on(message);
  }

  /** Ends every exchange under way: callers here are told to retry, relaying instances hear `fail`. */
  async #abandonAll(): Promise<void> {
    for (const outgoing of [...this.#outgoing.values()]) outgoing.abandon();
    await Promise.all([...this.#incoming.values()].map((incoming) => incoming.giveUp()));
  }

  #send(instance: string, message: RelayMessage): Promise<void> {
    const channel = this.#channelOf(instance);
    const text = JSON.stringify(message);
    const { box } = this.#deps;
    return this.#deps.store.publish(channel, box === undefined ? text : box.seal(channel, text));
  }

  #channelOf(instance: string): string {
    return `to:${instance}`;
  }
}
