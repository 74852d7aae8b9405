/**
 * @module virtual/virtual-session
 * A virtual server seen as one session-era MCP server over an in-process transport (issue 20),
 * so that a 2026-07-28 client reaches it the way it reaches any session-era server: through the
 * modern era facade (eras/modern-facade.ts), held in the modern pool per principal and client
 * envelope. The facade then turns a member's sampling, elicitation or roots request into an
 * input round, and serves `subscriptions/listen` from the list changes and resource updates
 * this transport's GET-stream channel carries.
 */
import { randomBytes } from 'node:crypto';
import type { OpenedSession, SessionOwner } from '../dispatch/held-sessions.ts';
import { ModernEraFacade } from '../eras/modern-facade.ts';
import { ProxyError } from '../errors.ts';
import {
  asObject,
  cancelledNotice,
  cancelledRequestId,
  isRequest,
  isResponse,
  type JsonObject,
  type JsonRpcMessage,
  type RequestId,
} from '../jsonrpc.ts';
import type { TargetGrants } from '../policy/grants.ts';
import { HeldSession } from '../sessions/held-session.ts';
import { ModernSessionPool } from '../sessions/modern-pool.ts';
import type { AddOptions, SessionStore } from '../sessions/store.ts';
import { type SendOptions, TransportCallbacks, type UpstreamTransport } from '../upstream/transport.ts';
import type { VirtualChannel } from './member-requests.ts';
import { virtualKey } from './virtual-key.ts';
import type { OpenCaller, VirtualCaller, VirtualServers } from './virtual-servers.ts';

/** The client capability each server request a member may send needs. */
const ASKED_CAPABILITY: Readonly<Record<string, string>> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/**
 * What the modern pool holds a virtual server's session for: the virtual server and the caller,
 * whose grants of now answer each request.
 */
export interface VirtualPoolTarget {
  readonly kind: 'virtual';
  readonly name: string;
  readonly caller: OpenCaller;
  /** Never: a virtual server's members get their credentials themselves (part of the pool key). */
  readonly bearerToken?: undefined;
  /** No tool filter at this level: the virtual server applies the grants per member. */
  readonly tools?: undefined;
}

/** What virtual servers' sessions need. */
export interface VirtualSessionsDeps {
  readonly virtual: VirtualServers;
  readonly sessions: SessionStore<HeldSession>;
  /** How long a call waits for the client's input after an input round, and the handshake's. */
  readonly inputDeadlineMs: number;
  readonly timeoutMs: number;
  /** This instance's tag in `requestState` handles. */
  readonly handleTag?: string | undefined;
}

/**
 * Virtual servers' sessions held for clients that need one: each a held session (so the session
 * caps and the idle sweep apply) over a {@link VirtualSessionTransport}.
 */
export class VirtualSessions {
  readonly #deps: VirtualSessionsDeps;
  /** 2026-07-28 clients of `/servers/{name}/mcp`: the era facade, pooled per client envelope. */
  readonly pool: ModernSessionPool<VirtualPoolTarget>;

  constructor(deps: VirtualSessionsDeps) {
    this.#deps = deps;
    this.pool = new ModernSessionPool<VirtualPoolTarget>({
      sessions: deps.sessions,
      open: (owner, target) => this.#open(owner, target, (inner) => this.#facade(inner), {}),
    });
  }

  /** Whether `name` is a virtual server. */
  has(name: string): boolean {
    return this.#deps.virtual.has(name);
  }

  /** Whether grants still reach the virtual server `targetKey` names; undefined: it names none. */
  stillReaches(targetKey: string, grants: TargetGrants | undefined): boolean | undefined {
    return this.#deps.virtual.stillReaches(targetKey, grants);
  }

  /** Refuses a caller whose grants do not reach the virtual server `name` (it looks unknown). */
  checkReach(name: string, caller: VirtualCaller): void {
    this.#deps.virtual.checkReach(name, caller.grants);
  }

  /**
   * A `/ws` socket's session, for its life: the client's first message picks the era (a
   * 2026-07-28 client gets the era facade in front, as for any session-era server).
   */
  async openSocket(owner: SessionOwner, target: VirtualPoolTarget): Promise<OpenedSession> {
    // Loaded with the first socket, as the connector loads it for held sessions (start-up memory).
    const { EraSwitch } = await import('../eras/era-switch.ts');
    const { inputDeadlineMs, timeoutMs, handleTag } = this.#deps;
    const era = (native: UpstreamTransport) =>
      new EraSwitch({
        native,
        supportsModern: async () => false,
        probeInBand: false,
        learnModern: () => {},
        modernOnly: () => false,
        learnModernOnly: () => {},
        modernTransport: (transport) => transport,
        inputDeadlineMs,
        timeoutMs,
        handleTag,
      });
    return this.#open(owner, target, era, { expires: false });
  }

  #facade(inner: UpstreamTransport): UpstreamTransport {
    const { inputDeadlineMs, timeoutMs, handleTag } = this.#deps;
    return new ModernEraFacade({ inner, inputDeadlineMs, timeoutMs, handleTag });
  }

  async #open(
    owner: SessionOwner,
    target: VirtualPoolTarget,
    wrap: (inner: UpstreamTransport) => UpstreamTransport,
    options: Omit<AddOptions, 'rateClass'>,
  ): Promise<OpenedSession> {
    const { sessions, virtual } = this.#deps;
    const { id, value } = await sessions.add(
      owner.ownerId,
      async () => {
        const transport = new VirtualSessionTransport(virtual, target.name, target.caller);
        // The key a reload judges: the virtual server, as for its requests.
        return new HeldSession(virtualKey(target.name), wrap(transport), 'virtual');
      },
      { ...options, rateClass: owner.rateClass },
    );
    value.onClosed(() => void sessions.delete(id));
    return { id, session: value };
  }
}

/**
 * The virtual server `name`, for one caller, as a session-era transport: each request is answered
 * by {@link VirtualServers.handle} (what members send for it arrives as messages before the
 * answer) with the caller's grants of now (a reload may have narrowed or widened them since the
 * session opened), a response answers a member's server request, and once initialized the
 * transport takes what members send outside any request, as a GET stream would.
 */
export class VirtualSessionTransport extends TransportCallbacks implements UpstreamTransport {
  readonly sessionId = undefined;
  readonly protocolVersion = undefined;
  readonly #virtual: VirtualServers;
  readonly #name: string;
  readonly #caller: OpenCaller;
  /**
   * The ids requests are handled under: unique to this transport, so that two sessions of one
   * principal (two client envelopes) never cancel each other's requests.
   */
  readonly #prefix = `mcpp-vs-${randomBytes(6).toString('base64url')}-`;
  readonly #running = new Set<AbortController>();
  readonly #channel: VirtualChannel = {
    send: (message) => {
      if (this.#closed) return false;
      // Members are told the proxy takes every server request; this client may not: refused.
      const needs = isRequest(message) ? ASKED_CAPABILITY[message.method] : undefined;
      if (needs !== undefined && this.#clientCapabilities[needs] === undefined) return false;
      this.onmessage?.(message);
      return true;
    },
    asks: true,
  };
  #closeStream: (() => void) | undefined;
  #closed = false;
  /** What the client declared in its `initialize`. */
  #clientCapabilities: JsonObject = {};

  constructor(virtual: VirtualServers, name: string, caller: OpenCaller) {
    super();
    this.#virtual = virtual;
    this.#name = name;
    this.#caller = caller;
  }

  async start(): Promise<void> {}

  pause(): void {}

  resume(): void {}

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    // The grants of now: verified again first when a reload ran since the last message.
    const caller = await this.#caller.current();
    if (this.#closed) throw new ProxyError('upstream_unreachable', 'The virtual server session closed.');
    if (isResponse(message)) {
      this.#virtual.answer(this.#name, caller, message);
      return;
    }
    if (!isRequest(message)) {
      const cancelled = cancelledRequestId(message);
      if (cancelled !== undefined) {
        const notice = cancelledNotice(this.#ownId(cancelled), 'cancelled by the client');
        await this.#virtual.handle(this.#name, { caller, message: notice });
      } else if (message.method === 'notifications/initialized') this.#openStream();
      return;
    }
    if (message.method === 'initialize') this.#clientCapabilities = asObject(message.params?.capabilities);
    const controller = new AbortController();
    this.#running.add(controller);
    const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
    try {
      const answer = await this.#virtual.handle(this.#name, {
        caller,
        message: { ...message, id: this.#ownId(message.id) },
        signal,
        channel: this.#channel,
      });
      if (answer !== undefined && !this.#closed) this.onmessage?.({ ...answer, id: message.id });
    } finally {
      this.#running.delete(controller);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const controller of this.#running) controller.abort();
    this.#closeStream?.();
    this.onclose?.();
  }

  #ownId(id: RequestId): string {
    return `${this.#prefix}${typeof id}:${String(id)}`;
  }

  /** What members send outside any request: list changes, resource updates, log messages. */
  #openStream(): void {
    if (this.#closeStream !== undefined) return;
    try {
      this.#closeStream = this.#virtual.openStream(this.#name, this.#caller, this.#channel).close;
    } catch {
      // Too many streams open for this principal: this session goes without (its listens hear nothing).
    }
  }
}
