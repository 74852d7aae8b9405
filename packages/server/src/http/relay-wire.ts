/**
 * @module http/relay-wire
 * What travels between instances when one relays a request to another (http/relay.ts): the
 * messages, what of a request and of its answer crosses, and how the owner streams the answer
 * back in parts. The proxy credential never does.
 */
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { bearerOf } from '../identity/hook.ts';
import type { Principal } from '../identity/principal.ts';
import { isProxyCredential } from '../identity/proxy-credential.ts';

/** While an exchange runs, the owner says so at least this often (an ack, unless a part went). */
export const KEEPALIVE_MS = 2_000;
/** Marks a request the relay runs on the owner; its value names the exchange (one use). */
export const RELAY_HEADER = 'x-mcp-proxy-relay';
/** Request headers never relayed: the proxy credential, hop-by-hop, recomputed ones. */
const DROPPED_REQUEST_HEADERS = new Set([
  'x-proxy-token',
  'cookie',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  RELAY_HEADER,
]);
/** Answer headers the receiving instance sets itself (hop-by-hop, its own CORS). */
const DROPPED_ANSWER_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'date',
  'vary',
]);

/** The request an owner runs. */
export interface OpenMessage {
  readonly k: 'open';
  readonly x: string;
  /** Always 0: the first message the relaying side sends in its exchange (see {@link RelayMessage}). */
  readonly n: 0;
  /** The requesting instance: answers go to its channel. */
  readonly from: string;
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly principal: Principal;
}

/**
 * Everything that travels between instances, by exchange `x`. `n` numbers each side's messages
 * within the exchange (the relaying side's `open` is 0, the owner's first message 1), sealed with
 * them: a receiver takes only the next one, so a message replayed by whoever can publish to the
 * store (within the seal's freshness) is dropped, and one lost in between ends the exchange.
 */
export type RelayMessage =
  | OpenMessage
  | { readonly k: 'cancel'; readonly x: string; readonly n: number }
  | { readonly k: 'ack'; readonly x: string; readonly n: number }
  | PartMessage
  | { readonly k: 'fail'; readonly x: string; readonly n: number };

/** A message before its side numbers it. */
export type Unnumbered<M extends RelayMessage> = M extends RelayMessage ? Omit<M, 'n'> : never;

/**
 * Numbers the messages one side sends in one exchange, and checks those it hears from the other:
 * `fresh` is true only for the next one.
 */
export class ExchangeSequence {
  #sent: number;
  #heard: number;

  /** @param sent the number of the last message this side sent (the relaying side's `open`: 0). */
  constructor(sent: number, heard: number) {
    this.#sent = sent;
    this.#heard = heard;
  }

  /** The number of this side's next message. */
  next(): number {
    return ++this.#sent;
  }

  /**
   * `'old'` for a message already heard or not numbered (a replay: drop it); else it is now
   * heard: `'next'`, or `'gap'` when one in between was lost.
   */
  hear(n: unknown): 'next' | 'old' | 'gap' {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= this.#heard) return 'old';
    const next = n === this.#heard + 1;
    this.#heard = n;
    return next ? 'next' : 'gap';
  }
}

/**
 * A piece of the answer: its status and headers first, then bytes (base64), then its end. What
 * is ready together travels in one message: a JSON answer is one part.
 */
export interface PartMessage {
  readonly k: 'part';
  readonly x: string;
  readonly n: number;
  readonly head?: { readonly status: number; readonly headers: Record<string, string> };
  readonly d?: string;
  readonly end?: true;
}

/** What the owner's `inject` answers (Fastify's, with `payloadAsStream`). */
export interface InjectedAnswer {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | number | undefined>;
  stream(): Readable;
}

/** Runs a request through this instance's own routes. */
export type Inject = (options: {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  payload?: string;
  payloadAsStream: true;
  signal: AbortSignal;
}) => Promise<InjectedAnswer>;

/**
 * The caller's headers minus its proxy credential and hop-by-hop ones. The credential never
 * travels, not even where the caller repeated it as the upstream token (`X-MCP-Token`, or
 * `Authorization` beside `X-Proxy-Token`): here it would have been dropped, and the owner, which
 * never sees the credential, could not tell it from an upstream token.
 */
export function relayedHeaders(request: FastifyRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || DROPPED_REQUEST_HEADERS.has(name)) continue;
    if (name === 'authorization') {
      if (request.credentialInAuthorization) continue;
      const bearer = typeof value === 'string' ? bearerOf(value) : undefined;
      if (bearer !== undefined && isProxyCredential(request, bearer)) continue;
    }
    if (name === 'x-mcp-token' && typeof value === 'string' && isProxyCredential(request, value)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  // The owner logs the exchange under the id the caller was given.
  headers['x-request-id'] = request.id;
  return headers;
}

/** The body, without a POST /proxy `mcp_token` that is the proxy credential (see {@link relayedHeaders}). */
export function relayedBody(request: FastifyRequest): unknown {
  const body = request.body;
  if (typeof body !== 'object' || body === null || !('mcp_token' in body)) return body;
  const { mcp_token: token, ...rest } = body as { mcp_token?: unknown };
  return typeof token === 'string' && isProxyCredential(request, token) ? rest : body;
}

/**
 * The URL without a `proxy_token` query parameter (a credential, when allowed at all), however
 * the caller spelled its name (`proxy%5Ftoken`, `#proxy_token=`): the query is rebuilt from what
 * Fastify parsed, the very thing that authenticated the caller, so no spelling it decoded to
 * `proxy_token` crosses the store, and the owner parses the same parameters again.
 */
export function relayedUrl(request: Pick<FastifyRequest, 'url' | 'query'>): string {
  // The router's query starts at the first `?` or `#` (see observability/logger.ts).
  const mark = request.url.search(/[?#]/);
  if (mark === -1) return request.url;
  const pairs: string[] = [];
  const query = typeof request.query === 'object' && request.query !== null ? request.query : {};
  for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
    if (name === 'proxy_token') continue;
    for (const one of Array.isArray(value) ? value : [value])
      pairs.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(one ?? ''))}`);
  }
  const path = request.url.slice(0, mark);
  return pairs.length === 0 ? path : `${path}?${pairs.join('&')}`;
}

/** The owner's answer headers the receiving instance repeats. */
export function answerHeaders(headers: InjectedAnswer['headers']): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_ANSWER_HEADERS.has(name) || name.startsWith('access-control-'))
      continue;
    kept[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return kept;
}

/** Bytes of answer the owner gathers into one part before it stops reading until that part is out. */
const MAX_PART_BYTES = 1_048_576;

/**
 * Sends the answer in parts, one at a time: what arrives while a part is on its way goes in the
 * next one, and reading stops while more than {@link MAX_PART_BYTES} wait, so the owner's own
 * stream writer feels the store's pace. The first part waits for the current tick's writes: a
 * JSON answer (head, body and end written at once) travels whole.
 */
export function streamAnswer(
  answer: InjectedAnswer,
  x: string,
  send: (part: Unnumbered<PartMessage>) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const stream = answer.stream();
  return new Promise<void>((resolve, reject) => {
    // Given up (a cancel, the relay closing): whatever the route does with its response, the
    // answer is not read any further.
    const onAbort = () => {
      stream.destroy();
      reject(new Error('the relayed exchange was given up'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    let head: PartMessage['head'] = { status: answer.statusCode, headers: answerHeaders(answer.headers) };
    const queue: Buffer[] = [];
    let queued = 0;
    let ended = false;
    let sending = false;
    let ready = false;
    const pump = () => {
      if (sending || !ready || (head === undefined && queued === 0 && !ended)) return;
      const part: Unnumbered<PartMessage> = {
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
      send(part).then(() => {
        sending = false;
        if (!part.end) pump();
        else {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }
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
