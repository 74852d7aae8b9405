/**
 * @module upstream/http
 * The single HTTP path to upstream MCP servers: every request goes through the egress guard's
 * pinned dispatcher, redirects are vetted hop by hop (or refused), time is bounded, bodies are
 * size-limited, and transport failures become {@link ProxyError}s with stable codes.
 */
import type { Dispatcher } from 'undici';
import { refuse } from '../egress/refusal.ts';
import type { EgressGuard } from '../egress/types.ts';
import { request } from '../egress/undici-parts.ts';
import { type ErrorData, findProxyError, ProxyError } from '../errors.ts';
import type { Tracing } from '../observability/tracing.ts';
import { requestCancelled } from './cancellation.ts';
import { withTraceContext } from './trace-context.ts';

/** Limits and timeouts for upstream HTTP. */
export interface UpstreamHttpOptions {
  /** Time allowed for the upstream to send response headers. */
  readonly timeoutMs: number;
  /** Largest upstream response body (or single SSE event) accepted. */
  readonly responseLimitBytes: number;
  /**
   * Told how long each upstream exchange took to answer (metrics, the status page), with the
   * URL it went to and, for a failure, its error or 5xx status.
   */
  readonly onTiming?: (
    outcome: 'ok' | 'error',
    seconds: number,
    url: URL,
    failure?: ProxyError | number,
  ) => void;
  /** Spans for upstream calls, and the trace context passed on (issue 21). */
  readonly tracing?: Tracing;
}

/** Whether a caller may be sent on to `url` (a redirect, an SSE endpoint): dispatch/targets.ts. */
export type ReachTest = (url: URL) => boolean;

/** One upstream request. */
export interface UpstreamRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** Aborts the request (caller gone, session closed, overall deadline). */
  readonly signal?: AbortSignal;
  /** Disable the body-idle timeout (long-lived SSE streams). */
  readonly streaming?: boolean;
}

/** An upstream response whose headers have arrived. */
export interface UpstreamResponse {
  readonly url: URL;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Dispatcher.ResponseData['body'];
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Redirects that repeat the method and body as they were (RFC 9110 §15.4.8, §15.4.9). */
const METHOD_KEEPING_STATUSES = new Set([307, 308]);
/**
 * Request headers that identify the caller or its session to one origin, and so never follow a
 * redirect to another: the MCP token (or a configured server token) in `Authorization`, cookies,
 * and the upstream session and stream position. Protocol headers (`Mcp-Protocol-Version`,
 * `Mcp-Method`, `Mcp-Param-*`) describe the message, not the caller, and stay.
 */
const ORIGIN_BOUND_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'mcp-session-id',
  'last-event-id',
]);

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!ORIGIN_BOUND_HEADERS.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}

/** Sends requests to upstream MCP servers through the egress guard. */
export class UpstreamHttp {
  readonly #guard: EgressGuard;
  readonly #options: UpstreamHttpOptions;
  /** Set only while tracing is on. */
  readonly #tracing: Tracing | undefined;
  /** Absent: the egress guard alone decides where the upstream may send the proxy on to. */
  readonly #mayReach: ReachTest | undefined;

  constructor(guard: EgressGuard, options: UpstreamHttpOptions, mayReach?: ReachTest) {
    this.#guard = guard;
    this.#options = options;
    this.#tracing = options.tracing?.enabled === true ? options.tracing : undefined;
    this.#mayReach = mayReach;
  }

  /** This client for one caller's target, following no redirect (nor SSE endpoint) `mayReach` refuses. */
  reaching(mayReach: ReachTest | undefined): UpstreamHttp {
    return mayReach === undefined ? this : new UpstreamHttp(this.#guard, this.#options, mayReach);
  }

  /** Whether the upstream may send the proxy on to `url` (the guard still vets it). */
  mayReach(url: URL): boolean {
    return this.#mayReach?.(url) ?? true;
  }

  /** Largest body this client accepts. */
  get responseLimitBytes(): number {
    return this.#options.responseLimitBytes;
  }

  /**
   * Sends a request; redirects are vetted again by the guard, and by the caller's reach test
   * ({@link UpstreamHttp.reaching}), or refused. A hop to another origin goes without the
   * caller's credentials and session (issue #14.8); a redirect that would turn a POST or DELETE
   * into a bodiless GET is refused (see docs/security.md, Redirects).
   */
  async send(url: URL, init: UpstreamRequest): Promise<UpstreamResponse> {
    let target = url;
    let hopInit = init;
    for (let hop = 1; ; hop++) {
      const response = await (this.#tracing === undefined
        ? this.#sendOnce(target, hopInit)
        : this.#sendTraced(this.#tracing, target, hopInit));
      if (!REDIRECT_STATUSES.has(response.status)) return response;
      discard(response);
      const location = headerValue(response.headers, 'location');
      if (!location) {
        throw new ProxyError(
          'upstream_protocol_error',
          'The MCP server answered with a redirect without a Location.',
        );
      }
      const next = await this.#guard.vetRedirect(target, location, hop);
      if (hopInit.method !== 'GET' && !METHOD_KEEPING_STATUSES.has(response.status)) {
        // Fetch would replay this as a GET without the body: a JSON-RPC message lost on the way.
        throw refuse(
          'redirect_refused',
          `The MCP server answered ${response.status} to a ${hopInit.method}, which would turn it into a GET without its JSON-RPC body; the proxy follows only 307 and 308 redirects for ${hopInit.method} requests.`,
        );
      }
      if (!this.mayReach(next)) {
        throw refuse('redirect_refused', 'The MCP server redirected outside what this caller may reach.');
      }
      // Browsers' rule (Fetch §4.4): scheme, host and port together decide what stays.
      if (next.origin !== target.origin)
        hopInit = { ...hopInit, headers: withoutCredentials(hopInit.headers) };
      target = next;
    }
  }

  /**
   * {@link UpstreamHttp.#sendOnce} in a client span (issue 21), ended when the answer's head
   * arrives, with the span's trace context passed on. A method of its own so that with tracing
   * off an exchange costs no extra promise.
   */
  async #sendTraced(tracing: Tracing, url: URL, init: UpstreamRequest): Promise<UpstreamResponse> {
    const span = tracing.client(`${init.method} upstream`, {
      'http.request.method': init.method,
      'server.address': url.hostname,
      'server.port': Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    });
    try {
      const response = await this.#sendOnce(url, withTraceContext(init, span.headers()));
      span.set({ 'http.response.status_code': response.status });
      span.end(response.status >= 500 ? String(response.status) : undefined);
      return response;
    } catch (error) {
      span.end(findProxyError(error)?.code ?? 'internal_error');
      throw error;
    }
  }

  async #sendOnce(url: URL, init: UpstreamRequest): Promise<UpstreamResponse> {
    const started = performance.now();
    const timing = this.#options.onTiming;
    try {
      const response = await request(url, {
        method: init.method,
        headers: init.headers,
        body: init.body ?? null,
        signal: init.signal,
        dispatcher: this.#guard.dispatcher,
        headersTimeout: this.#options.timeoutMs,
        bodyTimeout: init.streaming ? 0 : this.#options.timeoutMs,
      });
      const status = response.statusCode;
      if (status < 500) timing?.('ok', (performance.now() - started) / 1000, url);
      else timing?.('error', (performance.now() - started) / 1000, url, status);
      return { url, status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      const failure = toUpstreamError(error, init.signal);
      timing?.('error', (performance.now() - started) / 1000, url, failure);
      throw failure;
    }
  }

  /** Reads a whole body as text, enforcing the response size limit. */
  async readText(response: UpstreamResponse, signal?: AbortSignal): Promise<string> {
    return (await this.readBody(response, signal)).toString('utf8');
  }

  /** Reads a whole body into one Buffer, enforcing the response size limit. */
  async readBody(response: UpstreamResponse, signal?: AbortSignal): Promise<Buffer> {
    const limit = this.#options.responseLimitBytes;
    const declared = Number(headerValue(response.headers, 'content-length') ?? Number.NaN);
    if (declared > limit) {
      discard(response);
      throw tooLarge(limit);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      await eachChunk(response.body, (chunk) => {
        size += chunk.length;
        if (size > limit) {
          discard(response);
          throw tooLarge(limit);
        }
        chunks.push(chunk);
        return undefined;
      });
    } catch (error) {
      throw toUpstreamError(error, signal);
    }
    // Most answers arrive in one chunk: no copy then.
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
  }
}

/**
 * Feeds each chunk of `body` to `onChunk` until the body ends; rejects with the body's error,
 * with a premature-close error when it closes before its end, or with what `onChunk` throws
 * (the body is then dropped). A promise from `onChunk` holds reading until it settles.
 * Listeners instead of `for await`: an async iterator costs a promise and a microtask per chunk
 * and an iterator per body, on every upstream answer.
 */
export function eachChunk(
  body: UpstreamResponse['body'],
  onChunk: (chunk: Buffer) => Promise<void> | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    // A body already over sends no events any more.
    if (body.readableEnded) {
      resolve();
      return;
    }
    if (body.destroyed) {
      body.on('error', () => {});
      reject(body.errored ?? prematureClose());
      return;
    }
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      let held: Promise<void> | undefined;
      try {
        held = onChunk(chunk);
      } catch (error) {
        fail(error);
        body.destroy();
        return;
      }
      if (held === undefined) return;
      body.pause();
      held.then(
        () => {
          if (!settled) body.resume();
        },
        (error: unknown) => {
          fail(error);
          body.destroy();
        },
      );
    });
    body.on('end', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    // Stays attached: an abort that lands once this reader is done must not go uncaught.
    body.on('error', fail);
    // After the end, 'close' is the body's own clean-up: no error built (a stack) for it.
    body.on('close', () => {
      if (!settled) fail(prematureClose());
    });
  });
}

/** What a body that closed before its end fails with (as Node's stream utilities say it). */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Drops a response body we will not read. The no-op error listener matters: an abort that
 * lands after we let go would otherwise surface as an uncaught stream error.
 */
export function discard(response: UpstreamResponse): void {
  response.body.on('error', () => {});
  response.body.destroy();
}

/** Reads and drops a body we expect to be empty or irrelevant, keeping the connection reusable. */
export function drain(response: UpstreamResponse): void {
  response.body.on('error', () => {});
  response.body.resume();
}

/** The response size error (also used for oversized SSE events). */
export function tooLarge(limit: number): ProxyError {
  return new ProxyError('upstream_response_too_large', undefined, { data: { limitBytes: limit } });
}

/** Reads one header as a single string. */
export function headerValue(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

/** Maps a transport-level failure onto the proxy's error codes; never echoes addresses. */
export function toUpstreamError(error: unknown, signal?: AbortSignal): ProxyError {
  const known = findProxyError(error);
  if (known) return known;
  if (signal?.aborted) {
    const reason = findProxyError(signal.reason);
    if (reason) return reason;
    if (isTimeout(signal.reason)) return new ProxyError('upstream_timeout', undefined, { cause: error });
    return requestCancelled(error);
  }
  const code = errorCode(error);
  const data: ErrorData = code ? { reason: code } : {};
  if (code && TIMEOUT_CODES.has(code))
    return new ProxyError('upstream_timeout', undefined, { cause: error, data });
  if (code && UNREACHABLE_CODES.has(code)) {
    return new ProxyError('upstream_unreachable', unreachableMessage(code), { cause: error, data });
  }
  return new ProxyError('upstream_unreachable', undefined, { cause: error });
}

function unreachableMessage(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'Could not connect to the MCP server: connection refused.';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'Could not connect to the MCP server: its host name does not resolve.';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'EPIPE':
      return 'The MCP server closed the connection unexpectedly.';
    default:
      return 'Could not connect to the MCP server: network unreachable.';
  }
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTimeout(reason: unknown): boolean {
  return reason instanceof DOMException && reason.name === 'TimeoutError';
}
