/**
 * Several proxy instances (`src/main.ts` child processes) sharing one real redis-server, behind
 * a real nginx that balances round robin with no affinity (issue 19): what an operator runs with
 * several replicas, on loopback. Every instance keeps its port across a restart, so nginx's
 * configuration never changes; `kill('SIGKILL')` is an instance dying, `restart()` a rolling
 * restart's step. nginx and redis-server are Debian's (scripts/ensure-system-deps.mjs installs
 * them before `npm test`).
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from './compile-cache.ts';
import { eventually } from './eventually.ts';
import { freePort, waitForPort } from './net.ts';
import { TEST_TOKEN } from './proxy.ts';
import { type RedisServer, startRedis } from './redis.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
/**
 * How long nginx keeps an idle connection to an instance (its upstream `keepalive_timeout`), and
 * how long a draining instance leaves an idle connection to nginx before closing it: longer, so
 * nginx has closed it first and no request races its closing (docs/deployment.md).
 */
const NGINX_IDLE_S = 1;
const DRAIN_IDLE_MS = NGINX_IDLE_S * 1000 + 500;

/** What to start. */
export interface ClusterOptions {
  /** Proxy instances (default 3). */
  readonly instances?: number;
  /** Environment for every instance, over the defaults (loopback allowed, one known token). */
  readonly env?: Readonly<Record<string, string>>;
  /** Per-instance environment, by index (e.g. `WORKERS`). */
  readonly envOf?: (index: number) => Readonly<Record<string, string>>;
  /** Share a real Redis (default true); false: each instance keeps its own embedded store. */
  readonly redis?: boolean;
  /** Put nginx in front (default true); false: `url` is the first instance's. */
  readonly nginx?: boolean;
  /** V8 heap of each instance, MiB (default 256). */
  readonly heapMb?: number;
}

/** One proxy instance of the cluster. */
export interface ClusterInstance {
  readonly index: number;
  readonly port: number;
  /** Its own address, bypassing nginx. */
  readonly url: string;
  /** The running process (a new one after `restart()`). */
  child(): ChildProcess;
  /** True while the process has not exited. */
  alive(): boolean;
  /** The tail of what it wrote to stdout and stderr (for assertion messages). */
  output(): string;
  /** Sends `signal`; resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (after `kill`, or stopping it with SIGTERM first). */
  restart(): Promise<void>;
}

/** A running cluster. */
export interface Cluster {
  /** Where clients go: nginx (or the first instance without nginx). */
  readonly url: string;
  readonly token: string;
  readonly instances: readonly ClusterInstance[];
  /** The shared Redis, when there is one. */
  readonly redis: RedisServer | undefined;
  /** Everything every instance wrote so far, for assertion messages. */
  output(): string;
  /**
   * How often nginx's error log (at `info`) names each way an upstream failed it, e.g.
   * `{ "upstream prematurely closed connection": 2 }`: what a lost request met.
   */
  nginxFailures(): Record<string, number>;
  /** nginx's error-log lines that name a failure (a refused connect, which nginx retries, aside). */
  nginxFailureLines(): string[];
  stop(): Promise<void>;
}

/** The upstream failures nginx logs, by the words its error log uses. */
const NGINX_FAILURES = [
  'upstream prematurely closed connection',
  'Connection reset by peer',
  'Connection refused',
  'upstream timed out',
  'no live upstreams',
] as const;

/** Starts `instances` proxies (sharing Redis unless told not to) and nginx in front. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const count = options.instances ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'mcpp-cluster-'));
  const redis = options.redis === false ? undefined : await startRedis();
  const instances: InstanceHandle[] = [];
  let nginx: Nginx | undefined;
  try {
    for (let index = 0; index < count; index++) {
      const env: Record<string, string> = {
        DATA_DIR: join(dir, `data-${index}`),
        ...(redis ? { REDIS_URL: redis.url } : {}),
        ...options.env,
        ...options.envOf?.(index),
      };
      instances.push(await startInstance(index, env, options.heapMb ?? 256));
    }
    if (options.nginx !== false)
      nginx = await startNginx(
        instances.map((instance) => instance.port),
        join(dir, 'nginx'),
      );
  } catch (error) {
    await Promise.all(instances.map((instance) => instance.kill('SIGKILL')));
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: nginx?.url ?? (instances[0] as InstanceHandle).url,
    token: TEST_TOKEN,
    instances,
    redis,
    output: () =>
      instances.map((instance) => `--- instance ${instance.index}\n${instance.output()}`).join('\n'),
    nginxFailures: () => {
      const log = nginx?.errorLog() ?? '';
      return Object.fromEntries(
        NGINX_FAILURES.map((words) => [words, log.split(words).length - 1] as const).filter(([, n]) => n > 0),
      );
    },
    nginxFailureLines: () =>
      (nginx?.errorLog() ?? '')
        .split('\n')
        .filter((line) =>
          NGINX_FAILURES.some((words) => words !== 'Connection refused' && line.includes(words)),
        ),
    async stop() {
      await nginx?.stop();
      await Promise.all(instances.map((instance) => instance.kill('SIGKILL')));
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type InstanceHandle = ClusterInstance;

async function startInstance(
  index: number,
  env: Record<string, string>,
  heapMb: number,
): Promise<InstanceHandle> {
  const port = await freePort();
  let child: ChildProcess;
  let exited: Promise<void>;
  let output = '';
  const launch = async () => {
    mkdirSync(env.DATA_DIR ?? tmpdir(), { recursive: true });
    child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(port),
        PROXY_TOKEN: TEST_TOKEN,
        ALLOW_PRIVATE_NETWORKS: 'true',
        LOG_LEVEL: 'warn',
        DOTENV_PATH: '/nonexistent/.env',
        DRAIN_IDLE_MS: String(DRAIN_IDLE_MS),
        // The run's compile cache, so the instance starts as it is: no re-execution to name one.
        ...compileCacheEnv(),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const current = child;
    exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
    try {
      await waitForPort(port);
    } catch (error) {
      // Not yet listening (a saturated machine): it must not outlive the test that gave up on it.
      current.kill('SIGKILL');
      await exited;
      throw error;
    }
  };
  await launch();
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    index,
    port,
    url: `http://127.0.0.1:${port}`,
    child: () => child,
    alive,
    output: () => output,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (alive()) child.kill(signal);
      await exited;
    },
    async restart() {
      if (alive()) {
        child.kill('SIGTERM');
        await exited;
      }
      await launch();
    },
  };
}

interface Nginx {
  readonly url: string;
  /** What nginx has written to its error log so far. */
  errorLog(): string;
  stop(): Promise<void>;
}

/** The nginx binary: Debian's, or whatever `nginx` the PATH has. */
function nginxBinary(): string {
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
}

/**
 * nginx round robin over `ports`, no affinity, no buffering (event streams pass as they come),
 * long reads (a GET stream stays open), HTTP/1.1 keep-alive to the instances. A request is tried
 * on the next instance only when the connection to one fails (an instance that is down).
 */
async function startNginx(ports: readonly number[], prefix: string): Promise<Nginx> {
  const port = await freePort();
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log info;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  upstream mcp_proxy {
${ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n')}
    keepalive 32;
    keepalive_timeout ${NGINX_IDLE_S}s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://mcp_proxy;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_next_upstream error;
    }
  }
}
`,
  );
  const errorLog = join(prefix, 'error.log');
  const child = spawn(nginxBinary(), ['-p', prefix, '-e', errorLog, '-c', conf], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPort(port);
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, {
    timeoutMs: 10_000,
    what: 'nginx answering /health',
  });
  return {
    url: `http://127.0.0.1:${port}`,
    errorLog: () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
