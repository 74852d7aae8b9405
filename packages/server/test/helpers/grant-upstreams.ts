/**
 * The pieces the URL-grant tests share: a proxy configuration file that grants one caller a list of
 * URL patterns (rewritten and reloaded mid-test), a loopback upstream whose streams are closed with
 * it, a legacy HTTP+SSE upstream routed by path, and the `/proxy` call that opens or uses a held
 * legacy session.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { loadConfig } from '../../src/config/config.ts';
import { initializeResult } from '../fixtures/hostile-upstream.ts';
import { freePort, waitForPort } from './net.ts';
import { postProxy, type RunningProxy, TEST_TOKEN } from './proxy.ts';

const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** A proxy configuration file granting `caller` the URL patterns last written. */
export interface GrantConfig {
  readonly path: string;
  configure(urls: readonly string[]): void;
}

/** `rest`: the configuration's other sections (`servers`, ...), written with every grant. */
export function grantConfig(name: string, caller: string, rest: Record<string, unknown> = {}): GrantConfig {
  const path = join(mkdtempSync(join(tmpdir(), `mcpp-${name}-`)), 'proxy.json');
  return {
    path,
    configure: (urls) =>
      writeFileSync(path, JSON.stringify({ ...rest, tokens: [{ sha256: sha256(caller), urls }] })),
  };
}

/** Reloads the proxy from `config` as the operator would, with `env` besides the test defaults. */
export function reloadGrant(
  proxy: RunningProxy,
  config: GrantConfig,
  env: Record<string, string> = {},
): void {
  proxy.app.reload(
    loadConfig({
      env: {
        PROXY_TOKEN: TEST_TOKEN,
        ALLOW_PRIVATE_NETWORKS: 'true',
        STORE: 'memory',
        ...env,
        MCP_PROXY_CONFIG: config.path,
      },
    }),
  );
}

/** A loopback HTTP server; the responses in `streams` are destroyed when it closes. */
export interface LoopbackUpstream {
  readonly server: Server;
  readonly port: number;
  readonly streams: Set<ServerResponse>;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, streams: Set<ServerResponse>) => void;

export async function startLoopback(handler: Handler): Promise<LoopbackUpstream> {
  const streams = new Set<ServerResponse>();
  const server = createServer((req, res) => handler(req, res, streams));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    streams,
    close: async () => {
      for (const stream of streams) stream.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Keeps `res` in `streams` while it is open. */
export function holdStream(streams: Set<ServerResponse>, res: ServerResponse): void {
  streams.add(res);
  res.once('close', () => streams.delete(res));
}

export interface PostedMessage {
  id?: number;
  method?: string;
}

/** How a legacy HTTP+SSE upstream routes requests, by path. */
export interface SseRoutes {
  /** The endpoint a GET at `url` opens its event stream with; undefined: no stream there. */
  endpoint(url: string): string | undefined;
  /** Runs first for every request; true when it answered the request itself. */
  first?(req: IncomingMessage, res: ServerResponse): boolean;
  /** Whether a POST to `url` is a message (default: its path names `messages`); else 405. */
  isMessage?(url: string): boolean;
  /** Sees each message posted, before it is answered (202, then on every open stream). */
  onMessage?(url: string, message: PostedMessage): void;
}

export function startSseUpstream(routes: SseRoutes): Promise<LoopbackUpstream> {
  const isMessage = routes.isMessage ?? ((url: string) => url.includes('messages'));
  return startLoopback((req, res, streams) => {
    if (routes.first?.(req, res)) return;
    const endpoint = req.method === 'GET' ? routes.endpoint(req.url ?? '') : undefined;
    if (endpoint !== undefined) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: endpoint\ndata: ${endpoint}\n\n`);
      holdStream(streams, res);
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const answered = text(req).then((body) => {
      // Streamable HTTP probes at the SSE URL are refused so the proxy falls back.
      const url = req.url ?? '';
      if (!isMessage(url)) {
        res.writeHead(405).end();
        return;
      }
      const message = JSON.parse(body) as PostedMessage;
      routes.onMessage?.(url, message);
      res.writeHead(202).end();
      const answer =
        message.method === 'initialize'
          ? initializeResult(message.id)
          : message.id === undefined
            ? undefined
            : JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} });
      if (answer) for (const stream of streams) stream.write(`event: message\ndata: ${answer}\n\n`);
    });
    answered.catch(() => res.destroy());
  });
}

/** The params of a legacy (2024-11-05) initialize. */
export const LEGACY_INITIALIZE = {
  protocolVersion: '2024-11-05',
  capabilities: {},
  clientInfo: { name: 't', version: '1' },
} as const;

/** POST /proxy: `method` (an initialize carries its params) to the legacy SSE server at `serverUrl`. */
export function postSse(
  caller: { url: string; token: string },
  serverUrl: string,
  method: string,
  id: number,
  headers: Record<string, string> = {},
) {
  return postProxy(
    caller,
    {
      mcp_server_url: serverUrl,
      transport: 'sse',
      jsonrpc: '2.0',
      id,
      method,
      ...(method === 'initialize' ? { params: LEGACY_INITIALIZE } : {}),
    },
    headers,
  );
}

/** A real nginx on loopback that logs the path (`$uri`) of every request it serves. */
export interface PathLogNginx {
  readonly port: number;
  /** The paths served so far, in order. */
  seen(): string[];
  close(): Promise<void>;
}

/** An nginx location body answering every JSON-RPC call with `{ where }`. */
export const answerWhere = (where: string) =>
  `default_type application/json; return 200 '{"jsonrpc":"2.0","id":1,"result":{"where":"${where}"}}';`;

/** Starts nginx with `locations` in its one server block (`directives` besides, in `http`). */
export async function startPathLogNginx(
  name: string,
  locations: string,
  directives = '',
): Promise<PathLogNginx> {
  const prefix = mkdtempSync(join(tmpdir(), `mcpp-${name}-`));
  mkdirSync(join(prefix, 'tmp'));
  const port = await freePort();
  const accessLog = join(prefix, 'access.log');
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
events { worker_connections 64; }
http {
  log_format path '$uri';
  access_log ${accessLog} path;
  ${directives}
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    ${locations}
  }
}
`,
  );
  const nginx: ChildProcess = spawn(
    existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx',
    ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', conf],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => nginx.once('exit', () => resolve()));
  await waitForPort(port);
  return {
    port,
    seen: () => (existsSync(accessLog) ? readFileSync(accessLog, 'utf8').split('\n').filter(Boolean) : []),
    close: async () => {
      if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill('SIGTERM');
      await exited;
    },
  };
}
