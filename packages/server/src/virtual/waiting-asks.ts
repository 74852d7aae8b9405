/**
 * @module virtual/waiting-asks
 * Members' server requests waiting for a client's answer (member-requests.ts), bounded in time,
 * in all and per principal. A request that is given up on is answered, never dropped: once its
 * time is out, or when its principal's bound makes room for a newer one, the member that asked
 * gets a timeout error (MCP: a request gets a response), rather than waiting for a timeout of its
 * own. One principal's requests never make room for another's: when all are taken, a new one is
 * refused (the member is told nobody can answer it), and what waits stays.
 */
import { ProxyError, toJsonRpcError } from '../errors.ts';
import type { JsonRpcResponse, RequestId } from '../jsonrpc.ts';

/** Sends a client's answer to the member that asked. */
export type MemberReply = (response: JsonRpcResponse) => Promise<void>;

/** A server request waiting for its client's answer. */
export interface Waiting {
  /** The member's id for it. */
  readonly id: RequestId;
  readonly reply: MemberReply;
  /** The virtual server it was asked on; undefined while another instance has not yet taken it. */
  name: string | undefined;
}

/** Bounds, all defaults in one literal. */
export const WAITING_LIMITS = {
  /** Server requests waiting for their clients' answers, over every client of this instance. */
  total: 10_000,
  /** Of them, those asked of one principal's clients. */
  perPrincipal: 1_000,
} as const;

/** One waiting request and what gives up on it. */
interface Entry {
  readonly principalKey: string;
  readonly waiting: Waiting;
  readonly timer: NodeJS.Timeout;
}

/** Waiting requests by key (member-requests.ts `waitingKey`), each with its principal. */
export class WaitingAsks {
  readonly #timeoutMs: number;
  readonly #entries = new Map<string, Entry>();
  /** By principal: its waiting keys, oldest first. */
  readonly #byPrincipal = new Map<string, Set<string>>();

  /** @param timeoutMs how long an answer is waited for (a member's request lasts no longer). */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Keeps `waiting` under `key` for `principalKey`'s client; false (nothing kept) when every
   * place is taken. A principal at its own bound gives up on its oldest to make room.
   */
  add(principalKey: string, key: string, waiting: Waiting): boolean {
    const keys = this.#byPrincipal.get(principalKey) ?? new Set<string>();
    const [oldest] = keys.size >= WAITING_LIMITS.perPrincipal ? keys : [];
    if (oldest !== undefined) this.#giveUp(oldest, 'too many requests are waiting for the client');
    else if (this.#entries.size >= WAITING_LIMITS.total) return false;
    this.#byPrincipal.set(principalKey, keys);
    const timer = setTimeout(() => this.#giveUp(key, 'it did not answer in time'), this.#timeoutMs);
    timer.unref();
    keys.add(key);
    this.#entries.set(key, { principalKey, waiting, timer });
    return true;
  }

  /** What waits under `key`, if anything (left waiting). */
  get(key: string): Waiting | undefined {
    return this.#entries.get(key)?.waiting;
  }

  /** Stops waiting under `key` (answered, or never asked): what waited, if anything. */
  take(key: string): Waiting | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    clearTimeout(entry.timer);
    this.#entries.delete(key);
    const keys = this.#byPrincipal.get(entry.principalKey);
    keys?.delete(key);
    if (keys?.size === 0) this.#byPrincipal.delete(entry.principalKey);
    return entry.waiting;
  }

  /** Gives up on the request under `key`: its member is answered with a timeout error. */
  #giveUp(key: string, why: string): void {
    const waiting = this.take(key);
    const error = new ProxyError('upstream_timeout', `The client was asked, but ${why}.`, {
      data: { timeoutMs: this.#timeoutMs },
    });
    waiting?.reply(toJsonRpcError(error, waiting.id)).catch(() => {});
  }
}
