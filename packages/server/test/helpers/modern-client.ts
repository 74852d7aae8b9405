/**
 * Clients for MCP 2026-07-28 tests through the proxy: the official SDK v2 `Client` over its
 * Streamable HTTP transport pointed at `/mcp` (it answers elicitation and sampling, which on
 * this protocol arrive inside `InputRequiredResult`s), the raw request shapes of the modern
 * era (per-request `_meta` envelope and its mirrored headers) for fetch, `POST /proxy` and
 * `WS /ws`, and a recording WebSocket peer.
 *
 * @module
 */
import { Client, type FetchLike, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as LegacyTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch } from 'undici';
import WebSocket from 'ws';
import { rotation } from './mcp-client.ts';
import type { RunningProxy } from './proxy.ts';

/** The protocol version of the sessionless era. */
export const MODERN = '2026-07-28';

/** What the SDK client answers to an elicitation: `{ ok: true }`. */
export const ELICIT_ANSWER = { action: 'accept' as const, content: { ok: true } };
/** What the SDK client answers to a sampling request. */
export const SAMPLED_TEXT = 'a short summary';

/** The `_meta` envelope every modern request carries. */
export function modernMeta(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': { name: 'modern-raw-test', version: '1.0.0' },
    'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} }, sampling: {} },
    ...extra,
  };
}

/** A JSON-RPC request of the modern era (the envelope merged into `params._meta`). */
export function modernRequest(
  id: string | number,
  method: string,
  params: Record<string, unknown> = {},
  meta: Record<string, unknown> = {},
): { jsonrpc: '2.0'; id: string | number; method: string; params: Record<string, unknown> } {
  return { jsonrpc: '2.0', id, method, params: { ...params, _meta: modernMeta(meta) } };
}

/** The headers a modern request must carry: version, method, and name where one applies. */
export function modernHeaders(message: {
  method: string;
  params?: Record<string, unknown>;
}): Record<string, string> {
  const headers: Record<string, string> = { 'mcp-protocol-version': MODERN, 'mcp-method': message.method };
  const name =
    message.method === 'resources/read'
      ? message.params?.uri
      : message.method === 'tools/call' || message.method === 'prompts/get'
        ? message.params?.name
        : undefined;
  if (typeof name === 'string') headers['mcp-name'] = name;
  return headers;
}

/** POSTs a raw body to the proxy's `/mcp` for `upstreamUrl`, with `headers` on top. */
export function mcpFetch(
  proxy: Pick<RunningProxy, 'url' | 'token'>,
  upstreamUrl: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  const method = init.method ?? 'POST';
  return fetch(`${proxy.url}/mcp`, {
    method,
    headers: {
      accept: 'application/json, text/event-stream',
      'x-proxy-token': proxy.token,
      'x-mcp-server-url': upstreamUrl,
      ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

/** An SDK v2 client connected through the proxy, and what it saw. */
export interface ModernClient {
  readonly client: Client;
  /** Elicitation requests the client answered (with {@link ELICIT_ANSWER}). */
  readonly elicitations: unknown[];
  /** Sampling requests the client answered (with {@link SAMPLED_TEXT}). */
  readonly samplings: unknown[];
  close(): Promise<void>;
}

/**
 * Connects the SDK v2 client to `${proxy.url}/mcp` for `upstreamUrl`, negotiating the modern
 * era (`server/discover`, pinned to 2026-07-28 unless `mode` says otherwise).
 */
export async function connectModernClient(
  proxy: Pick<RunningProxy, 'url' | 'token'>,
  upstreamUrl: string,
  options: {
    mode?: 'auto' | 'pin';
    path?: string;
    /** Proxy base URLs each request goes to in turn (several instances, issue 19). */
    rotate?: readonly string[];
  } = {},
): Promise<ModernClient> {
  const client = new Client(
    { name: 'modern-sdk-test', version: '1.0.0' },
    {
      capabilities: { elicitation: { form: {} }, sampling: {} },
      versionNegotiation: { mode: options.mode === 'auto' ? 'auto' : { pin: MODERN } },
    },
  );
  const elicitations: unknown[] = [];
  const samplings: unknown[] = [];
  client.setRequestHandler('elicitation/create', (request) => {
    elicitations.push(request.params);
    return ELICIT_ANSWER;
  });
  client.setRequestHandler('sampling/createMessage', (request) => {
    samplings.push(request.params);
    return { role: 'assistant', model: 'test-model', content: { type: 'text', text: SAMPLED_TEXT } };
  });
  const pool = ownPool(rotation(options.rotate));
  // `options.path` (e.g. `/servers/x/mcp`) names the server itself: no X-MCP-Server-URL then.
  const headers: Record<string, string> = { 'X-Proxy-Token': proxy.token };
  if (options.path === undefined) headers['X-MCP-Server-URL'] = upstreamUrl;
  const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}${options.path ?? '/mcp'}`), {
    fetch: pool.fetch,
    requestInit: { headers },
  });
  const close = async () => {
    await client.close();
    await pool.destroy();
  };
  try {
    await client.connect(transport);
  } catch (error) {
    await close();
    throw error;
  }
  return { client, elicitations, samplings, close };
}

/** An SDK v1 (2025-era) client connected through the proxy's `/mcp`. */
export interface LegacyConnection {
  readonly client: LegacyClient;
  /** Elicitation requests the client answered (with {@link ELICIT_ANSWER}; `answerInput` only). */
  readonly elicitations: unknown[];
  /** Sampling requests the client answered (with {@link SAMPLED_TEXT}; `answerInput` only). */
  readonly samplings: unknown[];
  close(): Promise<void>;
}

/** Options of {@link connectLegacyClient}. */
export interface LegacyClientOptions {
  /**
   * Declare the elicitation and sampling capabilities and answer such server requests
   * (with {@link ELICIT_ANSWER} and {@link SAMPLED_TEXT}), recording them.
   */
  readonly answerInput?: boolean;
  /** Connect to this path of the proxy instead of `/mcp` with `X-MCP-Server-URL` (e.g. `/servers/x/mcp`). */
  readonly path?: string;
}

/**
 * Connects the SDK v1 client (the `initialize` handshake) to `${proxy.url}/mcp` for `upstreamUrl`
 * (or to `options.path`, where `upstreamUrl` is not sent).
 */
export async function connectLegacyClient(
  proxy: Pick<RunningProxy, 'url' | 'token'>,
  upstreamUrl: string,
  options: LegacyClientOptions = {},
): Promise<LegacyConnection> {
  const client = new LegacyClient(
    { name: 'legacy-sdk-test', version: '1.0.0' },
    options.answerInput ? { capabilities: { elicitation: { form: {} }, sampling: {} } } : {},
  );
  const elicitations: unknown[] = [];
  const samplings: unknown[] = [];
  if (options.answerInput) {
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      elicitations.push(request.params);
      return ELICIT_ANSWER;
    });
    client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      samplings.push(request.params);
      return { role: 'assistant', model: 'test-model', content: { type: 'text', text: SAMPLED_TEXT } };
    });
  }
  const pool = ownPool();
  const headers: Record<string, string> = { 'X-Proxy-Token': proxy.token };
  if (options.path === undefined) headers['X-MCP-Server-URL'] = upstreamUrl;
  const transport = new LegacyTransport(new URL(`${proxy.url}${options.path ?? '/mcp'}`), {
    fetch: pool.fetch,
    requestInit: { headers },
    reconnectionOptions: {
      maxRetries: 0,
      initialReconnectionDelay: 100,
      maxReconnectionDelay: 100,
      reconnectionDelayGrowFactor: 1,
    },
  });
  const close = async () => {
    await client.close().catch(() => {});
    await pool.destroy();
  };
  try {
    await client.connect(transport);
  } catch (error) {
    await close();
    throw error;
  }
  return { client, elicitations, samplings, close };
}

/**
 * A connection pool of the client's own, destroyed on close: a pooled socket left open would
 * hold the proxy's close() until the server's keep-alive timeout.
 */
function ownPool(rotated: (url: string | URL) => string | URL = (url) => url): {
  fetch: FetchLike;
  destroy(): Promise<void>;
} {
  const agent = new Agent();
  return {
    fetch: async (url, init) =>
      (await undiciFetch(rotated(url), { ...(init as object), dispatcher: agent })) as unknown as Response,
    destroy: () => agent.destroy(),
  };
}

/** A connected test socket that records every frame. */
export interface WsPeer {
  readonly ws: WebSocket;
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  readonly frames: any[];
  /** Sends one JSON frame. */
  send(message: unknown): void;
  /** The first frame (recorded so far or still to come) matching `predicate`. */
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  next(predicate: (frame: any) => boolean, timeoutMs?: number): Promise<any>;
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/**
 * Opens `WS /ws` to `upstream` (a URL, or `{ server }` naming a configured server) with the
 * token subprotocol and `origin`.
 */
export async function connectWs(
  proxy: Pick<RunningProxy, 'url' | 'token'>,
  upstream: string | { readonly server: string },
  origin: string,
): Promise<WsPeer> {
  const query = typeof upstream === 'string' ? { mcp_server_url: upstream } : { server: upstream.server };
  const url = `${proxy.url.replace('http', 'ws')}/ws?${new URLSearchParams(query)}`;
  const ws = new WebSocket(url, ['mcp', `proxy-token.${proxy.token}`], { origin });
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  const frames: any[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()));
    for (const wake of waiters) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closed,
    send: (message) => ws.send(JSON.stringify(message)),
    next: (predicate, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = frames.find(predicate);
          if (found === undefined) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching frame; got ${JSON.stringify(frames).slice(0, 800)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await closed;
    },
  };
}
