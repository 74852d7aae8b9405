/**
 * The official SDK `Client` over `StreamableHTTPClientTransport`, pointed at the proxy's `/mcp`
 * endpoint: it declares sampling, elicitation and roots and answers them, records every
 * notification so tests can wait for the ones they expect, and watches its standalone GET
 * stream (when it answered, whether the server ended it). Each client has its own connection
 * pool, destroyed on close.
 *
 * @module
 */

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  type CreateMessageRequest,
  CreateMessageRequestSchema,
  type ElicitRequest,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type Notification,
} from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch } from 'undici';

/** Where the proxy should send a client: a path on the proxy and the headers that name the upstream. */
export interface ProxyTarget {
  /** `/mcp` or `/servers/{name}/mcp`. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** A target named by URL (`X-MCP-Server-URL`), optionally with `X-MCP-Transport`. */
export function urlTarget(url: string, transport?: string, mcpToken?: string): ProxyTarget {
  return {
    path: '/mcp',
    headers: {
      'x-mcp-server-url': url,
      ...(transport === undefined ? {} : { 'x-mcp-transport': transport }),
      ...(mcpToken === undefined ? {} : { 'x-mcp-token': mcpToken }),
    },
  };
}

/** A server from the proxy's config file. */
export function serverTarget(name: string): ProxyTarget {
  return { path: `/servers/${name}/mcp`, headers: {} };
}

/** The proxy a client talks to. */
export interface ProxyAddress {
  readonly url: string;
  readonly token: string;
}

/** Notifications as they arrive, with a way to wait for one. */
export class NotificationLog {
  readonly #seen: Notification[] = [];
  readonly #waiters = new Set<{ match: (n: Notification) => boolean; resolve: (n: Notification) => void }>();

  /** Records one notification and wakes whoever waits for it. */
  record(notification: Notification): void {
    this.#seen.push(notification);
    for (const waiter of this.#waiters) {
      if (waiter.match(notification)) {
        this.#waiters.delete(waiter);
        waiter.resolve(notification);
      }
    }
  }

  /** Everything recorded with `method`, oldest first. */
  all(method: string): Notification[] {
    return this.#seen.filter((n) => n.method === method);
  }

  /** The first notification with `method` (and matching `predicate`), recorded already or to come. */
  async waitFor(
    method: string,
    timeoutMs: number,
    predicate: (n: Notification) => boolean = () => true,
  ): Promise<Notification> {
    const all = await this.waitForCount(method, 1, timeoutMs, predicate);
    return all[0] as Notification;
  }

  /** Resolves once `count` notifications with `method` (matching `predicate`) have arrived. */
  async waitForCount(
    method: string,
    count: number,
    timeoutMs: number,
    predicate: (n: Notification) => boolean = () => true,
  ): Promise<Notification[]> {
    const matching = () => this.#seen.filter((n) => n.method === method && predicate(n));
    if (matching().length >= count) return matching();
    const { promise, resolve, reject } = Promise.withResolvers<Notification>();
    const waiter = {
      match: (n: Notification) => n.method === method && predicate(n) && matching().length >= count,
      resolve,
    };
    this.#waiters.add(waiter);
    const timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      reject(new Error(`${matching().length} of ${count} ${method} notifications within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      await promise;
      return matching();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A connected client and what it observed. */
export interface ConnectedClient {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  readonly notifications: NotificationLog;
  /** Sampling requests the server sent, in order. */
  readonly samplingRequests: CreateMessageRequest['params'][];
  /** Elicitation requests the server sent, in order. */
  readonly elicitationRequests: ElicitRequest['params'][];
  /** How many roots/list requests the server sent. */
  readonly rootsRequests: () => number;
  /** Transport and protocol errors the client reported (diagnostics). */
  readonly errors: Error[];
  /**
   * Resolves once the standalone GET event stream has answered (the SDK opens it in the
   * background after initialization); rejects after `timeoutMs`.
   */
  readonly standaloneOpened: (timeoutMs: number) => Promise<void>;
  /** True once the standalone GET event stream has ended (the server closed it). */
  readonly standaloneEnded: () => boolean;
  close(): Promise<void>;
}

/** What the client's sampling handler answers with (the model name tests look for). */
export const SAMPLING_MODEL = 'matrix-test-model';
/** What the client's elicitation handler answers with. */
export const ELICITED_NAME = 'Ada Lovelace';
/** The one root the client lists. */
export const CLIENT_ROOT = { uri: 'file:///srv/matrix-root', name: 'matrix root' } as const;

/** Connects (initializes) an SDK client through the proxy to `target`. */
export async function connectClient(
  proxy: ProxyAddress,
  target: ProxyTarget,
  options: {
    readonly token?: string;
    readonly roots?: boolean;
    /**
     * Proxy base URLs each request goes to in turn (several instances, no affinity: issue 19);
     * consecutive requests land on different instances.
     */
    readonly rotate?: readonly string[];
    /**
     * Every request on a connection of its own (no keep-alive): under `WORKERS` (node:cluster
     * hands out connections, not requests) consecutive requests reach different workers.
     */
    readonly freshConnections?: boolean;
  } = {},
): Promise<ConnectedClient> {
  const client = new Client(
    { name: 'mcp-proxy-matrix', version: '1.0.0' },
    {
      capabilities: {
        sampling: {},
        elicitation: { form: {} },
        // Declaring roots makes both test servers ask for them right after initialization.
        ...(options.roots === false ? {} : { roots: {} }),
      },
    },
  );
  const notifications = new NotificationLog();
  const samplingRequests: CreateMessageRequest['params'][] = [];
  const elicitationRequests: ElicitRequest['params'][] = [];
  const errors: Error[] = [];
  let rootsRequests = 0;
  client.fallbackNotificationHandler = async (notification) => notifications.record(notification);
  client.onerror = (error) => errors.push(error);
  client.setRequestHandler(CreateMessageRequestSchema, (request) => {
    samplingRequests.push(request.params);
    const last = request.params.messages.at(-1)?.content;
    const prompt = last && 'text' in last ? last.text : '';
    return {
      model: SAMPLING_MODEL,
      role: 'assistant',
      content: { type: 'text', text: `answer to: ${prompt}` },
    };
  });
  client.setRequestHandler(ElicitRequestSchema, (request) => {
    elicitationRequests.push(request.params);
    return { action: 'accept', content: { name: ELICITED_NAME } };
  });
  if (options.roots !== false) {
    client.setRequestHandler(ListRootsRequestSchema, () => {
      rootsRequests += 1;
      return { roots: [CLIENT_ROOT] };
    });
  }
  // A connection pool of its own, destroyed on close: a pooled socket that never carried a
  // request would otherwise hold the proxy's close() open until the server's headers timeout.
  const agent = new Agent(options.freshConnections ? { pipelining: 0 } : {});
  const standalone = new StandaloneWatch();
  const rotated = rotation(options.rotate);
  const fetchWithAgent: FetchLike = async (url, init) => {
    const get = init?.method === 'GET';
    let response: Response;
    try {
      response = (await undiciFetch(rotated(url), {
        ...(init as object),
        dispatcher: agent,
      })) as unknown as Response;
    } catch (error) {
      if (get) standalone.fail();
      throw error;
    }
    return get ? standalone.watch(response) : response;
  };
  const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}${target.path}`), {
    fetch: fetchWithAgent,
    requestInit: { headers: { 'x-proxy-token': options.token ?? proxy.token, ...target.headers } },
    // A failed standalone stream should surface as an error, not be retried for a minute.
    reconnectionOptions: {
      maxRetries: 0,
      initialReconnectionDelay: 100,
      maxReconnectionDelay: 100,
      reconnectionDelayGrowFactor: 1,
    },
  });
  const close = async () => {
    await client.close();
    await agent.destroy();
  };
  try {
    await client.connect(transport, { timeout: 15_000 });
  } catch (error) {
    await close();
    throw error;
  }
  return {
    client,
    transport,
    notifications,
    samplingRequests,
    elicitationRequests,
    rootsRequests: () => rootsRequests,
    errors,
    standaloneOpened: (timeoutMs) => standalone.opened(timeoutMs),
    standaloneEnded: () => standalone.ended,
    close,
  };
}

/**
 * Sends each request to the next of `bases` in turn (same path and query), or leaves URLs alone
 * without them.
 */
export function rotation(bases: readonly string[] | undefined): (url: string | URL) => string | URL {
  if (bases === undefined || bases.length === 0) return (url) => url;
  let next = 0;
  return (url) => {
    const parsed = new URL(url);
    const base = bases[next++ % bases.length] as string;
    return `${base}${parsed.pathname}${parsed.search}`;
  };
}

/** Watches the client's standalone GET event stream: when it opened, and whether the server ended it. */
class StandaloneWatch {
  readonly #open = Promise.withResolvers<void>();
  #ended = false;

  /** True once the stream ended, broke, or was refused (no stream is open any more). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Resolves once a GET stream is open; rejects after `timeoutMs`. */
  async opened(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no standalone GET stream within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#open.promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The GET request failed before any answer. */
  fail(): void {
    this.#ended = true;
  }

  /** Passes a GET response through, noting when its body ends (not when the client cancels it). */
  watch(response: Response): Response {
    if (!response.ok || response.body === null) {
      this.#ended = true;
      return response;
    }
    this.#ended = false;
    this.#open.resolve();
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read();
          if (done) {
            this.#ended = true;
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          this.#ended = true;
          controller.error(error);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }
}

/** A raw reply from the proxy's `/mcp` endpoint. */
export interface RawReply {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
  readonly body: any;
}

/** POSTs one JSON-RPC message to `target` with an explicit session id and proxy token. */
export async function postRaw(
  proxy: ProxyAddress,
  target: ProxyTarget,
  message: unknown,
  options: { readonly sessionId?: string; readonly token?: string; readonly protocolVersion?: string } = {},
): Promise<RawReply> {
  const response = await fetch(`${proxy.url}${target.path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'x-proxy-token': options.token ?? proxy.token,
      ...(options.sessionId === undefined ? {} : { 'mcp-session-id': options.sessionId }),
      ...(options.protocolVersion === undefined ? {} : { 'mcp-protocol-version': options.protocolVersion }),
      ...target.headers,
    },
    body: JSON.stringify(message),
  });
  const text = await response.text();
  let body: unknown = text;
  if (text !== '' && (response.headers.get('content-type') ?? '').includes('application/json')) {
    body = JSON.parse(text);
  }
  return { status: response.status, body };
}

/** A call whose answer is an event stream under way, and a way to leave it. */
export interface StreamedCall {
  /** The answer's status and content type. */
  readonly status: number;
  readonly contentType: string;
  /** Drops the connection, as a caller that goes away. */
  leave(): void;
}

/**
 * Starts the feature fixture's `slow` tool (`ms` long, progress 0 first) in `sessionId` on
 * `${proxy.url}${path}`, answered as an event stream, and resolves once its first bytes (the
 * progress event) arrived: the call is running upstream.
 */
export async function startSlowCall(
  proxy: ProxyAddress,
  path: string,
  sessionId: string,
  requestId: string,
  ms: number,
): Promise<StreamedCall> {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: requestId,
    method: 'tools/call',
    params: { name: 'slow', arguments: { ms }, _meta: { progressToken: requestId } },
  });
  const request = httpRequest(`${proxy.url}${path}`, {
    method: 'POST',
    agent: false,
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      accept: 'application/json, text/event-stream',
      'x-proxy-token': proxy.token,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    },
  });
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
    request.end(body);
  });
  // What a dropped connection raises later is expected.
  request.on('error', () => {});
  response.on('error', () => {});
  await new Promise<void>((resolve) => response.once('data', () => resolve()));
  return {
    status: response.statusCode ?? 0,
    contentType: String(response.headers['content-type']),
    leave: () => request.destroy(),
  };
}
