/**
 * @module bench/lib/servers
 * Starts the processes under test, each pinned to the server core: the fast upstream, the
 * proxy (`packages/server/src/main.ts`, configured only through its environment), nginx with a
 * generated minimal config, and `@modelcontextprotocol/server-everything`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADMIN_TOKEN,
  type AnswerMode,
  NODE,
  ORIGIN,
  PROXY_TOKEN,
  ROOT,
  SERVER_CORES,
  SETTINGS,
} from './env.ts';
import { childPids, freePort, type Proc, startPinned, waitForHttp, waitForPort, waitUntil } from './procs.ts';
import { nginxBinary } from './tools.ts';

/** A started server: its process(es) and where it listens. */
export interface Server {
  readonly proc: Proc;
  readonly port: number;
  readonly base: string;
  /** Every pid whose CPU counts as this server's (nginx: master and workers). */
  pids(): number[];
  stop(): Promise<void>;
}

function server(proc: Proc, port: number, pids?: () => number[]): Server {
  return {
    proc,
    port,
    base: `http://127.0.0.1:${port}`,
    pids: pids ?? (() => [proc.pid]),
    stop: () => proc.stop(),
  };
}

/** The hand-written stateless upstream (HTTP `/mcp`, WebSocket `/ws`), answering as `answers` says. */
export async function startFastUpstream(answers: AnswerMode = 'json'): Promise<Server> {
  const work = String(SETTINGS.upstreamWorkUs);
  const proc = startPinned(NODE, [join(ROOT, 'bench/servers/fast-upstream.ts'), '0', answers, work], {
    name: answers === 'json' ? 'fast upstream' : `fast upstream (${answers})`,
    cores: SERVER_CORES,
    captureStdout: true,
  });
  const line = await proc.waitForLine((l) => l.startsWith('{"port"'));
  return server(proc, (JSON.parse(line) as { port: number }).port);
}

/** The minimal Node forwarder in front of `upstreamUrl` (see servers/node-floor.ts). */
export async function startNodeFloor(upstreamUrl: string): Promise<Server> {
  const proc = startPinned(NODE, [join(ROOT, 'bench/servers/node-floor.ts'), upstreamUrl], {
    name: 'node floor',
    cores: SERVER_CORES,
    captureStdout: true,
  });
  const line = await proc.waitForLine((l) => l.startsWith('{"port"'));
  return server(proc, (JSON.parse(line) as { port: number }).port);
}

/** Options for {@link startProxy}. */
export interface ProxyOptions {
  readonly logLevel?: string;
  /** Extra environment (limits, …). */
  readonly env?: Record<string, string>;
  /** Operator config file (e.g. a stdio server entry). */
  readonly configFile?: string;
  /** Extra node flags, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[];
  readonly name?: string;
  /** Another checkout of the repository to run the proxy from (a baseline to compare with). */
  readonly root?: string;
  /**
   * Only what the proxy needs to start and reach the bench's loopback upstreams (`HOST`, `PORT`,
   * `PROXY_TOKEN`, `ALLOW_PRIVATE_NETWORKS`, no `.env`): the default configuration otherwise,
   * log level and rate limits included. `logLevel` and `env` still apply.
   */
  readonly defaults?: boolean;
  /**
   * What "started" means: `/health` answers (the default), or the port accepts a connection,
   * so that no request has been served yet.
   */
  readonly ready?: 'health' | 'port';
  /** `taskset` cores of the proxy (default SERVER_CORES); with `WORKERS`, its workers' too. */
  readonly cores?: string;
}

/** The proxy, started as `npm start` would, with the bench's configuration. */
export async function startProxy(options: ProxyOptions = {}): Promise<Server> {
  const port = await freePort();
  const root = options.root ?? ROOT;
  const proc = startPinned(NODE, [...(options.nodeFlags ?? []), join(root, 'packages/server/src/main.ts')], {
    name: options.name ?? 'proxy',
    cores: options.cores ?? SERVER_CORES,
    cwd: root,
    cleanEnv: true,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      PROXY_TOKEN,
      ALLOW_PRIVATE_NETWORKS: 'true',
      // A developer's .env must not change what the bench measures.
      DOTENV_PATH: join(ROOT, 'bench/.cache/no.env'),
      ...(options.defaults
        ? { LOG_LEVEL: options.logLevel }
        : {
            // Mints the bench's user token; the minted key stays in memory, nothing is written.
            ADMIN_TOKEN,
            STORE: 'memory',
            LOG_LEVEL: options.logLevel ?? 'warn',
            CORS_ORIGINS: ORIGIN,
            MCP_PROXY_CONFIG: options.configFile,
            // The bench's load is far above the default limits (1,200 requests per token per minute).
            RATE_LIMIT_PER_TOKEN: '0',
            RATE_LIMIT_PER_IP: '0',
            RATE_LIMIT_WS_MESSAGES_PER_TOKEN: '0',
            RATE_LIMIT_SESSIONS_PER_TOKEN: '0',
          }),
      ...options.env,
    },
  });
  // Under WORKERS the work is done by the primary's children: their CPU is the proxy's.
  const clustered = (options.env?.WORKERS ?? '1') !== '1';
  const started = server(proc, port, clustered ? () => [proc.pid, ...childPids(proc.pid)] : undefined);
  const ready =
    options.ready === 'port' ? waitForPort(port, 30_000, proc.exited) : waitForHttp(`${started.base}/health`);
  await ready.catch((error: unknown) => {
    throw new Error(`${proc.name} did not start: ${(error as Error).message}\n${proc.stderrTail()}`);
  });
  return started;
}

/**
 * nginx in front of `upstreamPort`: one worker, keep-alive to the upstream, no access log, no
 * buffering (event streams pass as they come). `name` keeps two instances' files apart.
 */
export async function startNginx(upstreamPort: number, dir: string, name = 'nginx'): Promise<Server> {
  const port = await freePort();
  const prefix = join(dir, name.replace(/\W+/g, '-'));
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  keepalive_requests 10000000;
  upstream mcp {
    server 127.0.0.1:${upstreamPort};
    keepalive 512;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`,
  );
  const proc = startPinned(nginxBinary(), ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', conf], {
    name,
    cores: SERVER_CORES,
  });
  await waitUntil(() => childPids(proc.pid).length > 0, 10_000, 'nginx worker');
  await waitForHttp(`http://127.0.0.1:${port}/health`);
  return server(proc, port, () => [proc.pid, ...childPids(proc.pid)]);
}

/** `@modelcontextprotocol/server-everything` in Streamable HTTP mode (stateful, SSE answers). */
export async function startEverything(): Promise<Server> {
  const port = await freePort();
  const entry = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
  const proc = startPinned(NODE, [entry, 'streamableHttp'], {
    name: 'server-everything',
    cores: SERVER_CORES,
    env: { PORT: String(port) },
  });
  const started = server(proc, port);
  await waitUntil(
    async () => (await fetch(`${started.base}/mcp`, { method: 'DELETE' })).status > 0,
    30_000,
    'server-everything',
  );
  return started;
}
