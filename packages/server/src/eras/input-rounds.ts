/**
 * @module eras/input-rounds
 * The bookkeeping of the modern era facade's input rounds: each client call running upstream
 * on a session-era server, found by its upstream id, by the client request that owns it now,
 * or by the `requestState` handle the client echoes when it comes back with input; and the
 * server requests each call has waiting for the client's input, within bounds.
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject, JsonRpcRequest, JsonRpcResponse, RequestId } from '../jsonrpc.ts';
import { requestKey } from '../jsonrpc.ts';
import { PendingRequests } from '../upstream/correlator.ts';

/**
 * Server requests one call may have waiting for the client's input, and their params' bytes
 * (JSON text). A session-era server asks for a few; one asking for thousands made the facade
 * keep them all until the client came back (issue 14 review, F6). Beyond, they are refused.
 */
export const MAX_WAITING_PER_CALL = 16;
export const MAX_WAITING_BYTES_PER_CALL = 1_048_576;

/** Server requests a modern client can be asked through an `InputRequiredResult`. */
const INPUT_METHODS = new Set(['elicitation/create', 'sampling/createMessage', 'roots/list']);
/** Client requests that may answer with an `InputRequiredResult` (2026-07-28). */
const INPUT_CAPABLE = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** Prefix of the proxy's `requestState` handles. */
const HANDLE_PREFIX = 'mcpp-state.';

/** A server request waiting for the client's input. */
export interface Asked {
  readonly key: string;
  readonly id: RequestId;
  readonly method: string;
  readonly params: JsonObject | undefined;
  /** Its params' JSON text length, counted in its call's `inputBytes`. */
  readonly bytes: number;
}

/** A client call running upstream. */
export interface Call {
  readonly upstreamId: string;
  readonly method: string;
  /** The client request the next answer goes to; absent while the client owes input. */
  owner: RequestId | undefined;
  /** Server requests not yet shown to the client. */
  readonly waiting: Asked[];
  /** What `waiting` and `asked` hold, in bytes of their params' JSON text. */
  inputBytes: number;
  /** Server requests shown to the client, awaiting its retry. */
  asked: Asked[];
  /** The server's final response, kept while no client request owns the call. */
  final?: JsonRpcResponse;
  handle?: string;
  deadline?: NodeJS.Timeout;
  flushing?: boolean;
}

/** True when `state` is a handle this proxy hands out (else it is the server's own). */
export function isHandle(state: unknown): state is string {
  return typeof state === 'string' && state.startsWith(HANDLE_PREFIX);
}

/**
 * The tag of the instance that handed out `handle` (`mcpp-state.<tag>.<random>`), undefined for
 * a handle without one or anything else: a retry landing on another instance is relayed there
 * (issue 19), with no store write per input round.
 */
export function handleTagOf(state: unknown): string | undefined {
  if (!isHandle(state)) return undefined;
  const end = state.indexOf('.', HANDLE_PREFIX.length);
  return end < 0 ? undefined : state.slice(HANDLE_PREFIX.length, end);
}

/** The calls of one facade. */
export class CallTable {
  /** By upstream id: the server's responses find their call here. */
  readonly #calls = new PendingRequests<Call>();
  readonly #byClient = new Map<string, Call>();
  readonly #handles = new Map<string, Call>();
  /** Starts every handle: names this instance (see {@link handleTagOf}). */
  readonly #handlePrefix: string;
  #seq = 0;

  /** @param tag the instance's tag in handles (no `.`); empty: handles name no instance. */
  constructor(tag = '') {
    this.#handlePrefix = tag === '' ? HANDLE_PREFIX : `${HANDLE_PREFIX}${tag}.`;
  }

  /** Number of calls running. */
  get size(): number {
    return this.#calls.size;
  }

  /** Every call running, oldest first. */
  all(): Call[] {
    return [...this.#calls.values()];
  }

  /** Starts a call for the client's `message`, owned by it. */
  open(message: JsonRpcRequest): Call {
    const call: Call = {
      upstreamId: `mcpp-call-${++this.#seq}`,
      method: message.method,
      owner: message.id,
      waiting: [],
      inputBytes: 0,
      asked: [],
    };
    this.#calls.add(call.upstreamId, call);
    this.#byClient.set(requestKey(message.id), call);
    return call;
  }

  /** True while `call` runs. */
  running(call: Call): boolean {
    return this.#calls.get(call.upstreamId) === call;
  }

  /** The call a server response with this id answers. */
  byUpstreamId(id: RequestId): Call | undefined {
    return this.#calls.get(id);
  }

  /** The call the client request `id` owns. */
  byClient(id: RequestId): Call | undefined {
    return this.#byClient.get(requestKey(id));
  }

  /** The call a client's retry resumes, while nobody owns it. */
  byHandle(handle: string): Call | undefined {
    const call = this.#handles.get(handle);
    return call?.owner === undefined ? call : undefined;
  }

  /** The client's retry `id` owns the call now. */
  own(call: Call, id: RequestId): void {
    clearTimeout(call.deadline);
    call.owner = id;
    this.#byClient.set(requestKey(id), call);
  }

  /**
   * The call's owner is answered with an `InputRequiredResult`: nobody owns it until the
   * client comes back with the fresh handle returned (an earlier round's no longer resumes it).
   */
  disown(call: Call): string {
    if (call.owner !== undefined) this.#byClient.delete(requestKey(call.owner));
    call.owner = undefined;
    if (call.handle) this.#handles.delete(call.handle);
    call.handle = `${this.#handlePrefix}${randomBytes(18).toString('base64url')}`;
    this.#handles.set(call.handle, call);
    return call.handle;
  }

  /** Ends the call. */
  forget(call: Call): void {
    clearTimeout(call.deadline);
    this.#calls.delete(call.upstreamId, call);
    if (call.owner !== undefined) this.#byClient.delete(requestKey(call.owner));
    if (call.handle) this.#handles.delete(call.handle);
  }

  /**
   * The call a server request for input belongs to: the most recent that may ask for input
   * (a session-era server asks while a call runs); 2026-07-28 allows input only for these
   * requests and these methods.
   */
  asking(request: JsonRpcRequest): Call | undefined {
    if (!INPUT_METHODS.has(request.method)) return undefined;
    return this.all()
      .filter((call) => INPUT_CAPABLE.has(call.method))
      .at(-1);
  }

  /** Keeps `request` waiting for the client's input, unless the call holds too much already. */
  wait(call: Call, request: JsonRpcRequest): boolean {
    let bytes: number;
    try {
      bytes = request.params === undefined ? 0 : JSON.stringify(request.params).length;
    } catch {
      bytes = Number.POSITIVE_INFINITY; // Not representable: it could not be shown to the client.
    }
    if (
      call.waiting.length + call.asked.length >= MAX_WAITING_PER_CALL ||
      call.inputBytes + bytes > MAX_WAITING_BYTES_PER_CALL
    ) {
      return false;
    }
    call.inputBytes += bytes;
    const { id, method, params } = request;
    call.waiting.push({ key: `input-${++this.#seq}`, id, method, params, bytes });
    return true;
  }

  /** Takes the call's shown requests, the client's retry having answered them. */
  answered(call: Call): Asked[] {
    const answered = call.asked.splice(0);
    for (const asked of answered) call.inputBytes -= asked.bytes;
    return answered;
  }
}
