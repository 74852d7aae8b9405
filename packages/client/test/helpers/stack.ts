/**
 * The real stack the client tests run against: server-everything (Streamable HTTP or legacy
 * SSE) behind an in-process mcp-proxy, both on ephemeral loopback ports. The server's own test
 * helpers start them; nothing here reaches beyond loopback.
 */
import { type EverythingServer, startEverything } from '../../../server/test/helpers/everything.ts';
import { type RunningProxy, startProxy } from '../../../server/test/helpers/proxy.ts';
import { type BaseClientOptions, type FetchInit, type FetchLike, MCPProxyClient } from '../../src/index.ts';

/** Upstream kinds server-everything can run as. */
export type UpstreamMode = 'streamableHttp' | 'sse';

/** Every way the client reaches the proxy. */
export const TRANSPORTS = ['http', 'streamable', 'ws'] as const;

/** Options a test may change on a stack client. */
export type ClientOverrides = Partial<BaseClientOptions> & { mcpServerUrl?: string };

/** Collects an async iterable into an array (Array.fromAsync is not in the ES2024 lib). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** A running proxy + MCP server, and a factory for clients wired to both. */
export interface Stack {
  readonly proxy: RunningProxy;
  readonly upstream: EverythingServer;
  /** A client for this stack; closed by `close()`. */
  client(overrides?: ClientOverrides): MCPProxyClient;
  close(): Promise<void>;
}

/** Starts server-everything in `mode` and a proxy (with `env` over the test defaults). */
export async function startStack(mode: UpstreamMode, env: Record<string, string> = {}): Promise<Stack> {
  const upstream = await startEverything(mode);
  let proxy: RunningProxy;
  try {
    proxy = await startProxy(env);
  } catch (error) {
    await upstream.stop();
    throw error;
  }
  const clients: MCPProxyClient[] = [];
  return {
    proxy,
    upstream,
    client(overrides = {}) {
      const client = new MCPProxyClient({
        proxyUrl: proxy.url,
        proxyToken: proxy.token,
        mcpServerUrl: upstream.url,
        timeoutMs: 20_000,
        ...overrides,
      });
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      // fetch's pool may leave a connection that never sent a request; the server's graceful
      // close would wait for its headers timeout (~60 s). Every client here is closed already.
      proxy.app.server.closeAllConnections();
      await proxy.close();
      await upstream.stop();
    },
  };
}

/** One request the client made, as seen by the recording fetch. */
export interface RecordedCall {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;
  /** The answer's status; 0 until its headers arrived. */
  status: number;
}

/** A `fetch` that forwards to the real one and records what the client sent (at once) and got. */
export function recordingFetch(): { fetch: FetchLike; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const fetchLike: FetchLike = async (url: string, init: FetchInit) => {
    const call: RecordedCall = {
      method: init.method,
      url,
      headers: { ...init.headers },
      body: JSON.parse(init.body ?? '{}'),
      status: 0,
    };
    calls.push(call);
    const response = await fetch(url, init);
    call.status = response.status;
    return response;
  };
  return { fetch: fetchLike, calls };
}
