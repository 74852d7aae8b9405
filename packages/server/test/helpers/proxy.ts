/**
 * Builds and runs the proxy in-process on an ephemeral loopback port, with captured logs.
 */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { type AppDeps, buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';

/** The default token tests authenticate with. */
export const TEST_TOKEN = 'test-proxy-token-0123456789abcdef';

/** A running proxy. */
export interface RunningProxy {
  readonly url: string;
  readonly token: string;
  readonly app: FastifyInstance;
  /** Every log line written so far (raw JSON text). */
  readonly logs: string[];
  close(): Promise<void>;
}

/** Starts a proxy with `env` over test defaults (loopback allowed, one known token). */
export async function startProxy(
  env: Record<string, string> = {},
  deps: AppDeps = {},
): Promise<RunningProxy> {
  const config = loadConfig({
    env: {
      PROXY_TOKEN: TEST_TOKEN,
      ALLOW_PRIVATE_NETWORKS: 'true',
      LOG_LEVEL: 'debug',
      // Nothing on disk unless a test asks for it (REDIS_URL keeps choosing Redis).
      ...(env.REDIS_URL === undefined ? { STORE: 'memory' } : {}),
      ...env,
    },
  });
  const logs: string[] = [];
  const logDestination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      callback();
    },
  });
  const app = await buildApp(config, { logDestination, ...deps });
  // A test that must know the port before the app is built (PUBLIC_URL) picks it and passes PORT.
  await app.listen({ host: '127.0.0.1', port: env.PORT === undefined ? 0 : Number(env.PORT) });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token: config.proxyTokens[0] ?? TEST_TOKEN,
    app,
    logs,
    close: () => app.close(),
  };
}

/** A parsed proxy reply. */
export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
  readonly body: any;
}

/** POSTs an envelope (or raw text) to `/proxy`. */
export async function postProxy(
  proxy: Pick<RunningProxy, 'url' | 'token'>,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const response = await fetch(`${proxy.url}/proxy`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-proxy-token': proxy.token, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? undefined : JSON.parse(text),
  };
}
