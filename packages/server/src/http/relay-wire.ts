/**
 * @module http/relay-wire
 * What travels between instances when one relays a request to another (http/relay.ts): the
 * messages, what of a request and of its answer crosses, and how the owner streams the answer
 * back in parts. The proxy credential never does.
 */
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { bearerOf } from '../identity/hook.ts';
import { MINTER_ID } from '../identity/minted-tokens.ts';
import type { Principal } from '../identity/principal.ts';
import { isProxyCredential } from '../identity/proxy-credential.ts';
import { parseJsonObject } from '../json-object.ts';
import type { RelayBox } from './relay-box.ts';

/** While an exchange runs, the owner says so at least this often (an ack, unless a part went). */
export const KEEPALIVE_MS = 2_000;
/**
 * An exchange the other side has been silent about this long is over: a pub/sub message was lost
 * (or that side is stuck), and nobody else would end it.
 */
export const LIVENESS_MS = 4 * KEEPALIVE_MS;
/** Marks a request the relay runs on the owner; its value names the exchange (one use). */
export const RELAY_HEADER = 'x-mcp-proxy-relay';
/** The connection's own headers and the body's framing: each hop sets them for itself. */
const PER_HOP_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'content-length'];
/** Request headers never relayed: the proxy credential, hop-by-hop, recomputed ones. */
const DROPPED_REQUEST_HEADERS = new Set([
  'x-proxy-token',
  'cookie',
  ...PER_HOP_HEADERS,
  'upgrade',
  // The owner hears the caller's address in the open itself, as this instance resolved it.
  'x-forwarded-for',
  RELAY_HEADER,
]);
/** Answer headers the receiving instance sets itself (hop-by-hop, its own CORS). */
const DROPPED_ANSWER_HEADERS = new Set([...PER_HOP_HEADERS, 'date', 'vary']);

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
  /** The caller's address as the relaying instance resolved it (its socket, trusted proxies). */
  readonly address?: string;
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
  /** The relaying side has received `bytes` of the answer in all (the owner's pace, see http/relay-answer.ts). */
  | { readonly k: 'got'; readonly x: string; readonly n: number; readonly bytes: number }
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
 * A piece of the answer: its status and headers first, then bytes, then its end. Its bytes
 * travel beside the message ({@link encodeRelayMessage}), at most a part's worth each.
 */
export interface PartMessage {
  readonly k: 'part';
  readonly x: string;
  readonly n: number;
  readonly head?: { readonly status: number; readonly headers: Record<string, string> };
  readonly end?: true;
}

/** A message heard, with the bytes that travelled beside it. */
export interface HeardMessage {
  readonly message: RelayMessage;
  readonly data: Buffer | undefined;
}

/** Ends a message's JSON where its bytes follow (JSON text never holds a raw newline). */
const NEWLINE = 0x0a;

/**
 * The text published for `message` and its bytes on `channel`, encoded once: sealed, the JSON,
 * a newline and the raw bytes under one seal; in clear, the JSON and the bytes in base64 on the
 * next line.
 */
export function encodeRelayMessage(
  channel: string,
  message: RelayMessage,
  data: Buffer | undefined,
  box: RelayBox | undefined,
): string {
  const json = JSON.stringify(message);
  const hasData = data !== undefined && data.length > 0;
  if (box !== undefined) {
    const head = Buffer.from(json);
    return box.seal(channel, hasData ? Buffer.concat([head, Buffer.of(NEWLINE), data]) : head);
  }
  return hasData ? `${json}\n${data.toString('base64')}` : json;
}

/** The message published as `text` on `channel`; undefined when it does not open or parse. */
export function decodeRelayMessage(
  channel: string,
  text: string,
  box: RelayBox | undefined,
): HeardMessage | undefined {
  let json: string;
  let data: Buffer | undefined;
  if (box !== undefined) {
    const plain = box.open(channel, text);
    if (plain === undefined) return undefined;
    const line = plain.indexOf(NEWLINE);
    json = (line === -1 ? plain : plain.subarray(0, line)).toString('utf8');
    if (line !== -1) data = plain.subarray(line + 1);
  } else {
    const line = text.indexOf('\n');
    json = line === -1 ? text : text.slice(0, line);
    if (line !== -1) data = Buffer.from(text.slice(line + 1), 'base64');
  }
  const message = parseJsonObject(json);
  if (message === undefined || typeof (message as RelayMessage).x !== 'string') return undefined;
  return { message: message as RelayMessage, data };
}

/** The kinds of {@link Principal.auth}. */
const AUTH_KINDS = new Set<unknown>(['static', 'minted', 'oidc']);

/**
 * The principal an `open` carries, when it is shaped as one: a copy of the fields a principal
 * has, each of its type; undefined for anything else (the owner refuses the open). Whoever can
 * publish to an unsealed store could send any JSON here.
 */
export function principalOf(value: unknown): Principal | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  const grants = grantsOf(p.grants);
  if (
    !isText(p.id) ||
    !isText(p.principalKey) ||
    !isText(p.subject) ||
    !AUTH_KINDS.has(p.auth) ||
    grants === undefined ||
    !(p.expiresAt === undefined || Number.isFinite(p.expiresAt)) ||
    !(p.origin === undefined || isText(p.origin)) ||
    !(p.minter === undefined || mintersKey(p.minter, p.principalKey)) ||
    !(p.credentialId === undefined || isText(p.credentialId))
  )
    return undefined;
  return {
    id: p.id,
    principalKey: p.principalKey,
    subject: p.subject,
    auth: p.auth as Principal['auth'],
    grants,
    ...(p.expiresAt === undefined ? {} : { expiresAt: p.expiresAt as number }),
    ...(p.origin === undefined ? {} : { origin: p.origin }),
    ...(p.minter === undefined ? {} : { minter: p.minter }),
    ...(p.credentialId === undefined ? {} : { credentialId: p.credentialId }),
  };
}

/**
 * Whether `minter` is a minter id ({@link MINTER_ID}) and the one its minted principal key
 * (`minted:<minter>:<subject>`) is scoped by: the owner judges the principal against it.
 */
function mintersKey(minter: unknown, principalKey: string): minter is string {
  return typeof minter === 'string' && MINTER_ID.test(minter) && principalKey.startsWith(`minted:${minter}:`);
}

function grantsOf(value: unknown): Principal['grants'] | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const g = value as Record<string, unknown>;
  const names = (list: unknown) => list === undefined || (Array.isArray(list) && list.every(isText));
  if (
    !names(g.servers) ||
    !names(g.urls) ||
    !names(g.tools) ||
    !(g.rateClass === undefined || isText(g.rateClass)) ||
    !(g.admin === undefined || typeof g.admin === 'boolean')
  )
    return undefined;
  return {
    ...(g.servers === undefined ? {} : { servers: g.servers as string[] }),
    ...(g.urls === undefined ? {} : { urls: g.urls as string[] }),
    ...(g.tools === undefined ? {} : { tools: g.tools as string[] }),
    ...(g.rateClass === undefined ? {} : { rateClass: g.rateClass as string }),
    ...(g.admin === undefined ? {} : { admin: g.admin as boolean }),
  };
}

/** The caller's address an `open` carries, when it is an IP address; undefined otherwise. */
export function addressOf(value: unknown): string | undefined {
  return typeof value === 'string' && isIP(value) !== 0 ? value : undefined;
}

function isText(value: unknown): value is string {
  return typeof value === 'string';
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
  /** The caller's address, as the request's socket shows it (`inject`'s own is 127.0.0.1). */
  remoteAddress?: string;
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
