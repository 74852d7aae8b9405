/**
 * @module upstream/server-request-refusals
 * Answers the server-to-client requests an upstream sends where no client can answer them
 * (`POST /proxy`, a held session with nobody connected), within bounds. A server request
 * deserves an answer (MCP, base protocol: requests MUST get a response), and an error answer
 * is the polite one; but over Streamable HTTP each answer is a POST of its own, so an upstream
 * that streams thousands of `sampling/createMessage` made the proxy open thousands of outbound
 * connections from one call (issue 14 review, F2). Here at most a few refusals are in flight at
 * once, each tied to its owner's lifetime and a deadline; the rest are dropped unanswered (the
 * server then treats them as it would a silent client), and past a count the owner gives up.
 */
import { linkAbort } from '../abort.ts';
import { ProxyError, protocolError } from '../errors.ts';
import type { JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.ts';

/** How many refusals, how long. */
export interface RefusalLimits {
  readonly maxConcurrent: number;
  readonly maxRefused: number;
  readonly timeoutMs: number;
}

/** Bounds, all defaults in one literal. */
export const REFUSAL_DEFAULTS: RefusalLimits = {
  /** Refusals in flight at once per owner; more are dropped. */
  maxConcurrent: 4,
  /** Server requests an owner refuses before it calls the upstream broken. */
  maxRefused: 16,
  /** How long one refusal may take (an upstream that never answers it must not hold a socket). */
  timeoutMs: 5_000,
};

/** Sends one refusal upstream, aborted by `signal`. */
export type SendRefusal = (reply: JsonRpcResponse, signal: AbortSignal) => Promise<void>;

/** The refusals of one owner (an exchange, a call, a session). */
export class ServerRequestRefusals {
  readonly #send: SendRefusal;
  readonly #owner: AbortSignal | undefined;
  readonly #limits: RefusalLimits;
  #inFlight = 0;
  #seen = 0;

  /**
   * @param send how a refusal reaches the upstream.
   * @param owner ends every refusal still in flight when the owner ends (its call is over).
   */
  constructor(send: SendRefusal, owner?: AbortSignal, limits: RefusalLimits = REFUSAL_DEFAULTS) {
    this.#send = send;
    this.#owner = owner;
    this.#limits = limits;
  }

  /** Server requests refused (or dropped) so far. */
  get seen(): number {
    return this.#seen;
  }

  /** True once the upstream sent more server requests than an owner refuses. */
  get exceeded(): boolean {
    return this.#seen > this.#limits.maxRefused;
  }

  /**
   * Refuses `request` with `message` (JSON-RPC -32601), unless too many refusals are in flight
   * or too many were sent already: then it is dropped. Returns false once the limit is passed.
   */
  refuse(request: JsonRpcRequest, message: string): boolean {
    this.#seen++;
    if (this.exceeded) return false;
    if (this.#inFlight >= this.#limits.maxConcurrent || this.#owner?.aborted) return true;
    this.#inFlight++;
    const link = linkAbort([this.#owner], this.#limits.timeoutMs);
    const reply = protocolError(request.id, 'method_not_found', message);
    this.#send(reply, link.signal)
      .catch(() => {
        // Its fate does not matter: the upstream may have gone, or never read it.
      })
      .finally(() => {
        this.#inFlight--;
        link.dispose();
      });
    return true;
  }
}

/**
 * Refuses `request` on behalf of a `POST /proxy` caller, which cannot answer server requests.
 * Returns the error that ends the call once the upstream asked too often, else undefined.
 */
export function refuseForProxyCaller(
  refusals: ServerRequestRefusals,
  request: JsonRpcRequest,
): ProxyError | undefined {
  const refused = refusals.refuse(
    request,
    `This client cannot answer "${request.method}" through POST /proxy; connect through /mcp or /ws instead.`,
  );
  return refused ? undefined : tooManyServerRequests();
}

/** The error of a call whose upstream kept sending requests its caller cannot answer. */
export function tooManyServerRequests(): ProxyError {
  return new ProxyError(
    'upstream_protocol_error',
    'The MCP server kept sending requests this caller cannot answer (sampling, elicitation, …): connect through /mcp or /ws to answer them.',
  );
}
