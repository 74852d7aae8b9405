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
 * Nobody may wait on an owner that is gone: the owner acknowledges within {@link ACK_TIMEOUT_MS},
 * and both sides watch each other's heartbeat while an exchange runs. A request whose owner does
 * not answer goes on locally, where its session is simply not found (404, MCP's signal to start
 * a new session).
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
import {
  answerHeaders,
  type Inject,
  type InjectedAnswer,
  type OpenMessage,
  type PartMessage,
  RELAY_HEADER,
  type RelayMessage,
  relayedBody,
  relayedHeaders,
  relayedUrl,
} from './relay-wire.ts';

export type { Inject, InjectedAnswer } from './relay-wire.ts';

/** How long an owner has to acknowledge a relayed request before it counts as gone. */
export const ACK_TIMEOUT_MS = 2_000;
/**
 * The owner acknowledges a relayed request only if its answer has not started by then: a fast
 * answer is its own acknowledgement (one message fewer each way).
 */
const ACK_AFTER_MS = 200;
/** Bytes of answer the owner gathers into one part before it stops reading until that part is out. */
const MAX_PART_BYTES = 1_048_576;
/** Bytes a relayed answer may queue for a slow caller before the exchange is given up. */
const MAX_QUEUED_BYTES = 4 * 1_048_576;
/** Longest proxy-held session id looked up in the store (the proxy issues 29 characters). */
const MAX_SESSION_ID = 128;
/** Exchanges each side keeps at once: beyond, a relay is refused (and answered "not found"). */
const MAX_EXCHANGES = 10_000;
/**
 * How long an instance that let a relayed request go unacknowledged is taken for gone: its
 * heartbeat key may outlive it by that much, and each request for its sessions would otherwise
 * wait {@link ACK_TIMEOUT_MS} again. Anything heard from it ends this at once.
 */
const SILENT_FOR_MS = 5_000;
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
}

/** Where a request must run, when not necessarily here. */
type Destination = { readonly session: string } | { readonly instance: string };

/** A relayed exchange, on the instance that received it. */
interface Outgoing {
  readonly owner: string;
  on(message: RelayMessage): void;
  /** Ends it (the relay closing or having missed messages). */
  abandon(): void;
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
  readonly #incoming = new Map<string, AbortController>();
  /** Relayed requests not yet admitted by {@link Relay.trusting}, by exchange. */
  readonly #admitted = new Map<string, Admission>();
  /** Requests running here for another instance: never relayed again. */
  readonly #relayed = new WeakSet<FastifyRequest>();
  /** Instances that did not acknowledge a relayed request → until when they count as gone. */
  readonly #silent = new Map<string, number>();
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(deps: RelayDeps) {
    this.#deps = deps;
  }

  /** Listens on this instance's channel. */
  async start(): Promise<void> {
    this.#unsubscribe = await this.#deps.store.subscribe(
      this.#channelOf(this.#deps.ownership.instanceId),
      (text) => this.#hear(text),
      // Messages published while the subscription was down are lost: what was under way ends.
      () => this.#abandonAll(),
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

  /** Ends every exchange under way (shutdown). */
  async close(): Promise<void> {
    this.#abandonAll();
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
    if (owner === undefined || this.#isSilent(owner)) return false;
    if (this.#outgoing.size >= MAX_EXCHANGES) return false;
    return this.#relay(request, reply, owner);
  }

  /** Sends `request` to `owner` and answers with what comes back. */
  #relay(request: FastifyRequest, reply: FastifyReply, owner: string): Promise<boolean> {
    const x = randomBytes(16).toString('base64url');
    const raw = reply.raw;
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
        clearTimeout(ackTimer);
        stopWatching();
        raw.off('close', onCallerClose);
      };
      const cancel = () => void this.#send(owner, { k: 'cancel', x }).catch(() => {});
      /** The owner did not (or could no longer) answer: the request goes on here, as not found. */
      const notAnswered = () => {
        if (settled) return;
        span?.end('relay_not_answered');
        finish();
        cancel();
        if (body === undefined) resolve(false);
        else body.destroy(new Error('the instance holding the session is gone'));
      };
      const ackTimer = setTimeout(() => {
        this.#markSilent(owner);
        notAnswered();
      }, ACK_TIMEOUT_MS);
      const stopWatching = this.#deps.ownership.watch(owner, notAnswered);
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
        abandon: notAnswered,
        on: (message) => {
          if (settled) return;
          switch (message.k) {
            case 'ack':
              clearTimeout(ackTimer);
              return;
            case 'part': {
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
                clearTimeout(ackTimer);
                body = new PassThrough();
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
              notAnswered();
              return;
          }
        },
      });
      this.#send(owner, {
        k: 'open',
        x,
        from: this.#deps.ownership.instanceId,
        method: request.method as OpenMessage['method'],
        url: relayedUrl(request.url),
        headers:
          span === undefined ? relayedHeaders(request) : { ...relayedHeaders(request), ...span.headers() },
        ...(request.body === undefined ? {} : { body: JSON.stringify(relayedBody(request)) }),
        principal: request.identity as Principal,
      }).catch(notAnswered);
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
    this.#incoming.set(x, controller);
    // A cancel must reach the route as its caller leaving: \`inject\`'s own abort stops only
    // reading the answer once the request body has been read, and the route would run on.
    this.#admitted.set(x, {
      principal: open.principal,
      responds: (response) => {
        if (controller.signal.aborted) response.destroy();
        else controller.signal.addEventListener('abort', () => response.destroy(), { once: true });
      },
    });
    const stopWatching = this.#deps.ownership.watch(from, () => controller.abort());
    let started = false;
    const ack = setTimeout(() => {
      if (!started) void this.#send(from, { k: 'ack', x }).catch(() => {});
    }, ACK_AFTER_MS);
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
      await this.#stream(from, x, answer);
    } catch {
      if (!controller.signal.aborted) await this.#send(from, { k: 'fail', x }).catch(() => {});
    } finally {
      clearTimeout(ack);
      this.#incoming.delete(x);
      this.#admitted.delete(x);
      stopWatching();
    }
  }

  /**
   * Sends the answer in parts, one at a time: what arrives while a part is on its way goes in the
   * next one, and reading stops while more than {@link MAX_PART_BYTES} wait, so the owner's own
   * stream writer feels the store's pace. The first part waits for the current tick's writes: a
   * JSON answer (head, body and end written at once) travels whole.
   */
  #stream(to: string, x: string, answer: InjectedAnswer): Promise<void> {
    const stream = answer.stream();
    return new Promise<void>((resolve, reject) => {
      let head: PartMessage['head'] = { status: answer.statusCode, headers: answerHeaders(answer.headers) };
      const queue: Buffer[] = [];
      let queued = 0;
      let ended = false;
      let sending = false;
      let ready = false;
      const pump = () => {
        if (sending || !ready || (head === undefined && queued === 0 && !ended)) return;
        const part: PartMessage = {
          k: 'part',
          x,
          ...(head === undefined ? {} : { head }),
          ...(queued === 0 ? {} : { d: Buffer.concat(queue).toString('base64') }),
          ...(ended ? { end: true } : {}),
        };
        head = undefined;
        queue.length = 0;
        queued = 0;
        sending = true;
        stream.resume();
        this.#send(to, part).then(() => {
          sending = false;
          if (part.end) resolve();
          else pump();
        }, reject);
      };
      stream.on('data', (chunk: Buffer) => {
        queue.push(chunk);
        queued += chunk.length;
        if (queued > MAX_PART_BYTES) stream.pause();
        pump();
      });
      stream.once('end', () => {
        ended = true;
        pump();
      });
      stream.once('error', reject);
      setImmediate(() => {
        ready = true;
        pump();
      });
    });
  }

  #hear(text: string): void {
    let message: RelayMessage;
    try {
      message = JSON.parse(text) as RelayMessage;
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || typeof message.x !== 'string') return;
    if (message.k === 'open') {
      this.#silent.delete(message.from);
      void this.#serve(message);
    } else if (message.k === 'cancel') this.#incoming.get(message.x)?.abort();
    else {
      const outgoing = this.#outgoing.get(message.x);
      if (outgoing === undefined) return;
      this.#silent.delete(outgoing.owner);
      outgoing.on(message);
    }
  }

  #isSilent(instance: string): boolean {
    const until = this.#silent.get(instance);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#silent.delete(instance);
    return false;
  }

  #markSilent(instance: string): void {
    // Bounded: instances come and go over weeks; the expired ones are dropped first.
    if (this.#silent.size >= 1_000)
      for (const [id] of this.#silent) if (!this.#isSilent(id)) this.#silent.delete(id);
    if (this.#silent.size < 1_000) this.#silent.set(instance, Date.now() + SILENT_FOR_MS);
  }

  #abandonAll(): void {
    for (const outgoing of [...this.#outgoing.values()]) outgoing.abandon();
    for (const controller of this.#incoming.values()) controller.abort();
  }

  #send(instance: string, message: RelayMessage): Promise<void> {
    return this.#deps.store.publish(this.#channelOf(instance), JSON.stringify(message));
  }

  #channelOf(instance: string): string {
    return `to:${instance}`;
  }
}
