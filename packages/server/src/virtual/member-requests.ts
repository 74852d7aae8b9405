/**
 * @module virtual/member-requests
 * What a member sends while it serves a virtual server's client (issue 20): progress and log
 * messages for the request go to the client's answer stream (in the client's view:
 * client-view.ts), and a server request (sampling, elicitation, roots) goes to the client under
 * an id of the proxy's own, so that the client's answer, a POST of its own, finds its way back
 * to the member that asked, under the member's id.
 */
import { randomBytes } from 'node:crypto';
import {
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
  requestKey,
} from '../jsonrpc.ts';
import { TtlCache } from '../ttl-cache.ts';
import { exposedMessage } from './client-view.ts';
import type { MemberMapping } from './member-names.ts';
import { type MemberReply, WAITING_LIMITS, type Waiting, WaitingAsks } from './waiting-asks.ts';

export type { MemberReply } from './waiting-asks.ts';

/** Server requests a client of a virtual server may be asked, per virtual server (2025 era). */
const ASKABLE: ReadonlySet<string> = new Set(['sampling/createMessage', 'elicitation/create', 'roots/list']);
/** How long a member that asked a client for roots is told of its roots changing. */
const ROOTS_ASKERS_MS = 3_600_000;

/** Where the client of one request can be sent what a member sends for that request. */
export interface VirtualChannel {
  /** Writes one message to the client (its answer stream); false when it cannot. */
  send(message: JsonRpcMessage): boolean;
  /** Whether the client can answer server requests sent here (an answer stream can; a WebSocket too). */
  readonly asks: boolean;
  /** Ends it (a GET stream whose session was ended); none: it ends with what it serves. */
  readonly close?: (() => void) | undefined;
}

/** Names a client for its members' requests: its principal and virtual server. */
export function scopeOf(principalKey: string, name: string): string {
  return `${principalKey}\n${name}`;
}

/** What a member's request-related message does: taken (true), or left to the session (false). */
export type MemberRelay = (member: string, message: JsonRpcMessage, reply: MemberReply) => boolean;

/** The proxy's id of a server request it asked a client: `mcpp-ask-<instance tag>-<n>`. */
const ASK_ID = /^mcpp-ask-([A-Za-z0-9_-]{8})-\d{1,15}$/;

/** The tag of the instance that asked a client the request `id` names; undefined when none did. */
export function askerOf(id: RequestId | null): string | undefined {
  return typeof id === 'string' ? ASK_ID.exec(id)?.[1] : undefined;
}

/** What a server request asked of `principalKey`'s client under the proxy's `id` waits under. */
export function waitingKey(principalKey: string, id: RequestId): string {
  return `${principalKey}\n${requestKey(id)}`;
}

/** Server requests of members waiting for their clients' answers. */
export class MemberRequests {
  /** By the asked client's principal and the proxy's id: the member's id and how to reach it. */
  readonly #waiting: WaitingAsks;
  /**
   * Names this instance in the proxy's ids, unique across instances and restarts (a client may
   * keep an old one): the instance an answer comes to finds the one that asked by it.
   */
  readonly tag = randomBytes(6).toString('base64url');
  /** By scope and member: the members that asked the scope's clients for roots. */
  readonly #askedRoots = new TtlCache<string, true>({
    ttlMs: ROOTS_ASKERS_MS,
    maxEntries: WAITING_LIMITS.total,
  });
  #seq = 0;

  /**
   * @param timeoutMs how long an answer is waited for (a member's request lasts no longer): then
   * the member is answered with a timeout error.
   */
  constructor(timeoutMs: number) {
    this.#waiting = new WaitingAsks(timeoutMs);
  }

  /**
   * The relay for one client request: the client is `principalKey`'s on the virtual server
   * `name` (only its own answers are taken from it); `mapping` is that virtual server's.
   */
  relay(
    principalKey: string,
    name: string,
    channel: VirtualChannel,
    era: 'session' | 'modern',
    mapping: MemberMapping,
  ): MemberRelay {
    // A 2026-07-28 client is never sent a server request: it would be asked in input rounds.
    const asks = channel.asks && era === 'session';
    return (member, message, reply) => {
      if (!isRequest(message)) return channel.send(exposedMessage(member, message, mapping));
      if (message.method === 'roots/list')
        this.#askedRoots.set(`${scopeOf(principalKey, name)}\n${member}`, true);
      if (!asks || !ASKABLE.has(message.method)) return false;
      const asked = this.#ask(principalKey, name, message, reply);
      if (asked === undefined) return false;
      if (channel.send(asked)) return true;
      this.#waiting.take(waitingKey(principalKey, asked.id));
      return false;
    };
  }

  /**
   * A member's server request that no client here took, for another instance's client of
   * `principalKey` to be asked: the request under the proxy's id, waiting here for the answer
   * (on any virtual server, until {@link taken} names the one that asked); undefined when it
   * cannot be asked, or too many wait already.
   */
  askElsewhere(
    principalKey: string,
    message: JsonRpcRequest,
    reply: MemberReply,
  ): JsonRpcRequest | undefined {
    return ASKABLE.has(message.method) ? this.#ask(principalKey, undefined, message, reply) : undefined;
  }

  /** Another instance asked its client of `name` the request `id` ({@link askElsewhere}). */
  taken(principalKey: string, id: RequestId, name: string): boolean {
    const waiting = this.#waiting.get(waitingKey(principalKey, id));
    if (waiting === undefined || waiting.name !== undefined) return false;
    waiting.name = name;
    return true;
  }

  /** Forgets the request `id` when no instance took it: the member's id and reply, if so. */
  untaken(principalKey: string, id: RequestId): Omit<Waiting, 'name'> | undefined {
    const key = waitingKey(principalKey, id);
    const waiting = this.#waiting.get(key);
    if (waiting === undefined || waiting.name !== undefined) return undefined;
    return this.#waiting.take(key);
  }

  /** Which of `members` asked the scope's clients for roots lately (they are told of a change). */
  askedRoots(scope: string, members: readonly string[]): string[] {
    return members.filter((member) => this.#askedRoots.get(`${scope}\n${member}`) !== undefined);
  }

  /**
   * A client's answer to a server request asked here: sent to the member that asked; false when
   * nothing here waits for it from this principal's client of `name`.
   */
  answer(principalKey: string, name: string, response: JsonRpcResponse): boolean {
    if (response.id === null) return false;
    const key = waitingKey(principalKey, response.id);
    const waiting = this.#waiting.get(key);
    if (waiting === undefined || (waiting.name !== undefined && waiting.name !== name)) return false;
    this.#waiting.take(key);
    waiting.reply({ ...response, id: waiting.id }).catch(() => {});
    return true;
  }

  #ask(
    principalKey: string,
    name: string | undefined,
    message: JsonRpcRequest,
    reply: MemberReply,
  ): JsonRpcRequest | undefined {
    const id = `mcpp-ask-${this.tag}-${++this.#seq}`;
    if (!this.#waiting.add(principalKey, waitingKey(principalKey, id), { id: message.id, reply, name }))
      return undefined;
    return { ...message, id };
  }
}
