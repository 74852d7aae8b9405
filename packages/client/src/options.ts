/**
 * @module options
 * The client's one options object: its type, every default in one literal, and the validation
 * that turns what the caller passed into {@link ResolvedOptions} (or throws before any I/O).
 */
import type { AuthRequiredHandler } from './auth-required.ts';
import { InvalidInputError } from './errors.ts';
import type { SignInWindow } from './sign-in.ts';
import type { ClientCapabilities, Implementation } from './types.ts';
import { VERSION } from './version.ts';

/**
 * How the client reaches the proxy: `http` = one `POST /proxy` per message (requests only);
 * `streamable` = the proxy's MCP Streamable HTTP endpoint `/mcp`; `ws` = its WebSocket `/ws`.
 * The last two also carry server notifications and server-to-client requests.
 */
export type TransportKind = 'http' | 'streamable' | 'ws';

/** Which transport the proxy uses towards the MCP server (`auto` probes, per the MCP spec). */
export type UpstreamTransport = 'auto' | 'streamable-http' | 'sse' | 'websocket';

/** What the client passes to `fetch`. */
export interface FetchInit {
  method: 'GET' | 'POST' | 'DELETE';
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** The part of a `fetch` `Response` the client reads. */
export interface FetchResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  /** The body as a stream (event streams are read from it). */
  readonly body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
}

/** A `WebSocket` constructor: the global one, or e.g. the `ws` package's on older Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

/** A `fetch`-compatible function (the global `fetch`, undici's, a test double). */
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponse>;

/** Options shared by both ways of naming the MCP server. */
export interface BaseClientOptions {
  /** The proxy's base URL, e.g. `https://proxy.example.com` (the client appends `/proxy`). */
  proxyUrl: string;
  /** Sent as `X-Proxy-Token`. */
  proxyToken: string;
  /** Sent by the proxy to the MCP server as `Authorization: Bearer …`, nowhere else. */
  mcpToken?: string | undefined;
  /** How to reach the proxy (default `http`). */
  transport?: TransportKind | undefined;
  /** Which transport the proxy uses upstream (default: the proxy's `auto`). */
  upstreamTransport?: UpstreamTransport | undefined;
  /** Per-call deadline in ms (default 60 000; 0 = none). Each call may override it. */
  timeoutMs?: number | undefined;
  /** The `fetch` to use (default: the global one, looked up at call time). */
  fetch?: FetchLike | undefined;
  /** The `WebSocket` to use for `ws` and `connectWebSocket()` (default: the global one). */
  WebSocket?: WebSocketConstructor | undefined;
  /** Protocol version offered in `initialize` (default `2025-06-18`). */
  protocolVersion?: string | undefined;
  /** `clientInfo` sent in `initialize` (default `{ name: 'mcp-proxy-client', version }`). */
  clientInfo?: Implementation | undefined;
  /** Capabilities sent in `initialize`, merged over those the request handlers imply. */
  capabilities?: ClientCapabilities | undefined;
  /**
   * Called when a request fails because the MCP server needs the user to sign in (the proxy's
   * OAuth broker, `upstream_auth_required`); the request is sent again once it settles. See
   * {@link AuthRequiredHandler}. Without it such a request rejects with the error.
   */
  onAuthRequired?: AuthRequiredHandler | undefined;
  /** How long `authorize()` waits for the user to sign in, in ms (default 300 000; 0 = no limit). */
  signInTimeoutMs?: number | undefined;
  /** The window that opens sign-in popups and receives their messages (default: the global `window`). */
  window?: SignInWindow | undefined;
}

/** Options of `new MCPProxyClient(…)`: the base options plus exactly one of `mcpServerUrl` and `server`. */
export type MCPProxyClientOptions = BaseClientOptions &
  (
    | {
        /** The MCP server's endpoint URL, e.g. `https://mcp.example.com/mcp`. */
        mcpServerUrl: string;
        server?: never;
      }
    | {
        /** A server configured on the proxy (its config file's `servers:`), by name. */
        server: string;
        mcpServerUrl?: never;
      }
  );

/** Every default, in one place (frozen: shared by every client). */
export const DEFAULTS = Object.freeze({
  transport: 'http',
  timeoutMs: 60_000,
  protocolVersion: '2025-06-18',
  clientInfo: Object.freeze({ name: 'mcp-proxy-client', version: VERSION }),
  capabilities: Object.freeze({}),
  signInTimeoutMs: 300_000,
} as const);

/** Options after validation, defaults applied. */
export interface ResolvedOptions {
  readonly proxyUrl: string;
  readonly proxyToken: string;
  /** Exactly one of `mcpServerUrl` and `server` is set. */
  readonly mcpServerUrl: string | undefined;
  readonly server: string | undefined;
  readonly mcpToken: string | undefined;
  readonly transport: TransportKind;
  readonly upstreamTransport: UpstreamTransport | undefined;
  readonly timeoutMs: number;
  readonly fetch: FetchLike;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly protocolVersion: string;
  readonly clientInfo: Implementation;
  readonly capabilities: ClientCapabilities;
  readonly onAuthRequired: AuthRequiredHandler | undefined;
  readonly signInTimeoutMs: number;
  /** Undefined outside a browser (no global `window.open`): `authorize()` is not supported there. */
  readonly window: SignInWindow | undefined;
}

const TRANSPORTS: readonly string[] = ['http', 'streamable', 'ws'];
const UPSTREAM_TRANSPORTS: readonly string[] = ['auto', 'streamable-http', 'sse', 'websocket'];

/** Validates `options` and applies {@link DEFAULTS}. Throws {@link InvalidInputError}. */
export function resolveOptions(options: MCPProxyClientOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object');
  const proxyUrl = requireString(options.proxyUrl, 'proxyUrl');
  const parsed = parseUrl(proxyUrl);
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw invalid('proxyUrl', 'must be an http(s) URL such as https://proxy.example.com');
  }
  const proxyToken = requireString(options.proxyToken, 'proxyToken');
  if (options.server !== undefined && options.mcpServerUrl !== undefined) {
    throw invalid('server', 'and mcpServerUrl are exclusive: pass one');
  }
  const server = optionalString(options.server, 'server');
  const mcpServerUrl = server === undefined ? requireString(options.mcpServerUrl, 'mcpServerUrl') : undefined;
  const mcpToken = optionalString(options.mcpToken, 'mcpToken');
  const transport = options.transport ?? DEFAULTS.transport;
  if (!TRANSPORTS.includes(transport)) throw invalid('transport', `must be one of ${TRANSPORTS.join(', ')}`);
  const upstreamTransport = options.upstreamTransport;
  if (upstreamTransport !== undefined && !UPSTREAM_TRANSPORTS.includes(upstreamTransport)) {
    throw invalid('upstreamTransport', `must be one of ${UPSTREAM_TRANSPORTS.join(', ')}`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
  checkTimeout(timeoutMs, 'timeoutMs');
  const custom = options.fetch;
  if (custom !== undefined && typeof custom !== 'function') throw invalid('fetch', 'must be a function');
  const WebSocket = options.WebSocket;
  if (WebSocket !== undefined && typeof WebSocket !== 'function')
    throw invalid('WebSocket', 'must be a constructor');
  const onAuthRequired = options.onAuthRequired;
  if (onAuthRequired !== undefined && typeof onAuthRequired !== 'function') {
    throw invalid('onAuthRequired', 'must be a function');
  }
  const signInTimeoutMs = options.signInTimeoutMs ?? DEFAULTS.signInTimeoutMs;
  checkTimeout(signInTimeoutMs, 'signInTimeoutMs');
  const window = options.window ?? browserWindow();
  if (window !== undefined && typeof window.open !== 'function') throw invalid('window', 'must have open()');
  return {
    proxyUrl,
    proxyToken,
    mcpServerUrl,
    server,
    mcpToken,
    transport,
    upstreamTransport,
    timeoutMs,
    // Looked up per call and called unbound from globalThis: browsers throw "Illegal invocation"
    // when fetch is called as a method of another object.
    fetch: custom ?? ((url, init) => globalThis.fetch(url, init)),
    WebSocket,
    protocolVersion: optionalString(options.protocolVersion, 'protocolVersion') ?? DEFAULTS.protocolVersion,
    clientInfo: options.clientInfo ?? DEFAULTS.clientInfo,
    capabilities: options.capabilities ?? DEFAULTS.capabilities,
    onAuthRequired,
    signInTimeoutMs,
    window,
  };
}

/** The page's window, when there is one that can open popups. */
function browserWindow(): SignInWindow | undefined {
  const global = globalThis as { window?: unknown; open?: unknown };
  return global.window === globalThis && typeof global.open === 'function'
    ? (globalThis as unknown as SignInWindow)
    : undefined;
}

/** Throws unless `value` is a usable timeout: a finite number ≥ 0 (0 = none). */
export function checkTimeout(value: unknown, field: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(field, 'must be a finite number of milliseconds ≥ 0 (0 = no timeout)');
  }
}

/** An {@link InvalidInputError} naming `field`. */
export function invalid(field: string, problem: string): InvalidInputError {
  return new InvalidInputError('invalid_input', `Invalid ${field}: ${problem}.`, { data: { field } });
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(field, 'must be a non-empty string');
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  return value === undefined ? undefined : requireString(value, field);
}
