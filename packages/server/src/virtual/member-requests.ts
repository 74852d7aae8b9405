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

/** Server requests a client of a virtual server may be asked, per virtual server (2025 era). */
const ASKABLE: ReadonlySet<string> = new Set(['sampling/createMessage', 'elicitation/create', 'roots/list']);
/** Server requests waiting for a client's answer, over every client of this instance. */
const MAX_WAITING = 10_000;
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

/** Sends a client's answer to the member that asked. */
export type MemberReply = (response: JsonRpcResponse) => Promise<void>;

/** What a member's request-related message does: taken (true), or left to the session (false). */
export type MemberRelay = (member: string, message: JsonRpcMessage, reply: MemberReply) => boolean;

/** Server requests of members waiting for their clients' answers. */
export class MemberRequests {
  /** By the asked client's scope and the proxy's id: the member's id and how to reach it. */
  readonly #waiting: TtlCache<string, { readonly id: RequestId; readonly reply: MemberReply }>;
  /** Makes the proxy's ids unique across instances and restarts (a client may keep an old one). */
  readonly #prefix = `mcpp-ask-${randomBytes(6).toString('base64url')}-`;
  /** By scope and member: the members that asked the scope's clients for roots. */
  readonly #askedRoots = new TtlCache<string, true>({ ttlMs: ROOTS_ASKERS_MS, maxEntries: MAX_WAITING });
  #seq = 0;

  /** @param timeoutMs how long an answer is waited for (a member's request lasts no longer). */
  constructor(timeoutMs: number, now?: () => number) {
    this.#waiting = new TtlCache({ ttlMs: timeoutMs, maxEntries: MAX_WAITING, now });
  }

  /**
   * The relay for one client request: `scope` names the client (its principal and virtual
   * server: only its own answers are taken from it); `mapping` is that virtual server's.
   */
  relay(
    scope: string,
    channel: VirtualChannel,
    era: 'session' | 'modern',
    mapping: MemberMapping,
  ): MemberRelay {
    // A 2026-07-28 client is never sent a server request: it would be asked in input rounds.
    const asks = channel.asks && era === 'session';
    return (member, message, reply) => {
      if (!isRequest(message)) return channel.send(exposedMessage(member, message, mapping));
      if (message.method === 'roots/list') this.#askedRoots.set(`${scope}\n${member}`, true);
      if (!asks || !ASKABLE.has(message.method)) return false;
      return this.#ask(scope, message, reply, channel);
    };
  }

  /** Which of `members` asked the scope's clients for roots lately (they are told of a change). */
  askedRoots(scope: string, members: readonly string[]): string[] {
    return members.filter((member) => this.#askedRoots.get(`${scope}\n${member}`) !== undefined);
  }

  /** A client's answer to a server request: sent to the member that asked; false when none did. */
  answer(scope: string, response: JsonRpcResponse): boolean {
    if (response.id === null) return false;
    const key = `${scope}\n${requestKey(response.id)}`;
    const waiting = this.#waiting.get(key);
    if (waiting === undefined) return false;
    this.#waiting.delete(key);
    waiting.reply({ ...response, id: waiting.id }).catch(() => {});
    return true;
  }

  #ask(scope: string, message: JsonRpcRequest, reply: MemberReply, channel: VirtualChannel): boolean {
    const id = `${this.#prefix}${++this.#seq}`;
    const key = `${scope}\n${requestKey(id)}`;
    this.#waiting.set(key, { id: message.id, reply });
    if (channel.send({ ...message, id })) return true;
    this.#waiting.delete(key);
    return false;
  }
}
