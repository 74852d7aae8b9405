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
  cancelledNotice,
  cancelledRequestId,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type RequestId,
} from '../jsonrpc.ts';
import { HeldSession } from '../sessions/held-session.ts';
import { ModernSessionPool } from '../sessions/modern-pool.ts';
import type { SessionStore } from '../sessions/store.ts';
import { type SendOptions, TransportCallbacks, type UpstreamTransport } from '../upstream/transport.ts';
import type { VirtualChannel } from './member-requests.ts';
import type { VirtualCaller, VirtualServers } from './virtual-servers.ts';

/** What the modern pool holds a virtual server's session for: the virtual server and the caller. */
export interface VirtualPoolTarget {
  readonly kind: 'virtual';
  readonly name: string;
  readonly caller: VirtualCaller;
  /** Never: a virtual server's members get their credentials themselves (part of the pool key). */
  readonly bearerToken?: undefined;
  /** No tool filter at this level: the virtual server applies the grants per member. */
  readonly tools?: undefined;
}

/** What the pool of virtual sessions needs. */
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
 * The modern pool of virtual servers' sessions: each a held session (so the session caps and the
 * idle sweep apply) whose upstream is the era facade over a {@link VirtualSessionTransport}.
 */
export function virtualSessionPool(deps: VirtualSessionsDeps): ModernSessionPool<VirtualPoolTarget> {
  const open = async (owner: SessionOwner, target: VirtualPoolTarget): Promise<OpenedSession> => {
    const { id, value } = await deps.sessions.add(
      owner.ownerId,
      async () => {
        const facade = new ModernEraFacade({
          inner: new VirtualSessionTransport(deps.virtual, target.name, target.caller),
          inputDeadlineMs: deps.inputDeadlineMs,
          timeoutMs: deps.timeoutMs,
          handleTag: deps.handleTag,
        });
        // The key a reload judges: the virtual server, as for its requests.
        return new HeldSession(`server:${target.name}`, facade, 'virtual');
      },
      { rateClass: owner.rateClass },
    );
    value.onClosed(() => void deps.sessions.delete(id));
    return { id, session: value };
  };
  return new ModernSessionPool<VirtualPoolTarget>({ sessions: deps.sessions, open });
}

/**
 * The virtual server `name`, for one caller, as a session-era transport: each request is answered
 * by {@link VirtualServers.handle} (what members send for it arrives as messages before the
 * answer), a response answers a member's server request, and once initialized the transport
 * takes what members send outside any request, as a GET stream would.
 */
export class VirtualSessionTransport extends TransportCallbacks implements UpstreamTransport {
  readonly sessionId = undefined;
  readonly protocolVersion = undefined;
  readonly #virtual: VirtualServers;
  readonly #name: string;
  readonly #caller: VirtualCaller;
  /**
   * The ids requests are handled under: unique to this transport, so that two sessions of one
   * principal (two client envelopes) never cancel each other's requests.
   */
  readonly #prefix = `mcpp-vs-${randomBytes(6).toString('base64url')}-`;
  readonly #running = new Set<AbortController>();
  readonly #channel: VirtualChannel = {
    send: (message) => {
      if (this.#closed) return false;
      this.onmessage?.(message);
      return true;
    },
    asks: true,
  };
  #closeStream: (() => void) | undefined;
  #closed = false;

  constructor(virtual: VirtualServers, name: string, caller: VirtualCaller) {
    super();
    this.#virtual = virtual;
    this.#name = name;
    this.#caller = caller;
  }

  async start(): Promise<void> {}

  pause(): void {}

  resume(): void {}

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    if (this.#closed) throw new ProxyError('upstream_unreachable', 'The virtual server session closed.');
    if (isResponse(message)) {
      this.#virtual.answer(this.#name, this.#caller, message);
      return;
    }
    if (!isRequest(message)) {
      const cancelled = cancelledRequestId(message);
      if (cancelled !== undefined) {
        const notice = cancelledNotice(this.#ownId(cancelled), 'cancelled by the client');
        await this.#virtual.handle(this.#name, { caller: this.#caller, message: notice });
      } else if (message.method === 'notifications/initialized') this.#openStream();
      return;
    }
    const controller = new AbortController();
    this.#running.add(controller);
    const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
    try {
      const answer = await this.#virtual.handle(this.#name, {
        caller: this.#caller,
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
      this.#closeStream = this.#virtual.openStream(this.#name, this.#caller, this.#channel);
    } catch {
      // Too many streams open for this principal: this session goes without (its listens hear nothing).
    }
  }
}
