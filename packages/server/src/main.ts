/**
 * @module main
 * Entry point: answer `--help`/`--version`, read the configuration, build the app, listen (a
 * busy port is one line, not a stack trace), reload on SIGHUP, and shut down gracefully on
 * SIGTERM/SIGINT (stop accepting, finish in-flight requests within a bound, close upstreams).
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { flushCompileCache } from 'node:module';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DestinationStream } from 'pino';
import { startWithCompileCache } from './compile-cache.ts';
import type { Config } from './config/config.ts';
import { holdOptimizersBack, releaseStartupGarbage, startupV8Flags } from './startup-memory.ts';
import type { IpcPort } from './store/cluster-store.ts';

// Issue #16 (start-up memory): Node strips the types of every .ts file it loads with a WebAssembly
// compiler that, once warm, holds ~10-25 MiB for the life of the process. Its output is kept in
// Node's compile cache, so a restart loads the modules below without it, and this file too once
// the process has re-executed itself with the cache named in its environment (compile-cache.ts).
// The cache lives with the installed code (`node_modules/.cache`), never in a shared temporary
// folder whose entries another user could plant; NODE_COMPILE_CACHE, when set, wins. Where it
// cannot be written, nothing changes. The modules are imported dynamically because static
// imports would load before this line runs. The server itself (app.ts, Fastify) loads only where
// it serves: a WORKERS primary never does. The same re-execution gives V8 the flags it reads only
// when it makes its heap, and the optimizing compilers wait until the modules are loaded
// (startup-memory.ts).
startWithCompileCache(
  fileURLToPath(new URL('../../../node_modules/.cache/mcp-proxy/compile', import.meta.url)),
  startupV8Flags(),
);
const releaseOptimizers = holdOptimizersBack();
const [{ pino }, { ConfigError, loadConfig }, { parseArgs, usage }, { VERSION }] = await Promise.all([
  import('pino'),
  import('./config/config.ts'),
  import('./config/usage.ts'),
  import('./version.ts'),
]);

async function main(): Promise<void> {
  const command = parseArgs(process.argv.slice(2));
  switch (command.kind) {
    case 'help':
      process.stdout.write(usage());
      return;
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return;
    case 'unknown':
      process.stderr.write(
        `Unknown argument "${command.arg}": settings come from the environment; see --help.\n`,
      );
      process.exit(64); // EX_USAGE
  }
  let config: Config;
  try {
    config = loadConfig({ env: process.env, dotenvPath: resolve(process.env.DOTENV_PATH ?? '.env') });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  const workers = config.workers === 'auto' ? availableParallelism() : config.workers;
  const primary = cluster.isPrimary && workers > 1;
  let generated: string | undefined;
  if (cluster.isWorker) {
    // The primary generated the token (and showed it once): every worker accepts the same one.
    const { GENERATED_TOKEN_ENV } = await import('./workers/primary.ts');
    const fromPrimary = process.env[GENERATED_TOKEN_ENV];
    if (fromPrimary !== undefined && configuresNoCredential(config)) {
      generated = fromPrimary;
      config = Object.freeze({ ...config, proxyTokens: Object.freeze([fromPrimary]) });
    }
  } else if (configuresNoCredential(config)) {
    // Serve out of the box, but with a strong secret the operator sees exactly once.
    const token = randomBytes(32).toString('base64url');
    generated = token;
    config = Object.freeze({ ...config, proxyTokens: Object.freeze([token]) });
    process.stdout.write(
      [
        '',
        'No PROXY_TOKEN is configured, so this run uses a generated one (shown only here):',
        '',
        `    X-Proxy-Token: ${token}`,
        '',
        'To keep a fixed token, set PROXY_TOKEN (32+ random characters) in the environment or in .env:',
        '    echo "PROXY_TOKEN=$(openssl rand -hex 32)" >> .env',
        '',
      ].join('\n'),
    );
  }

  const logDestination = prettyLogs(config.logFormat) ? prettyDestination() : undefined;
  if (primary) {
    const [{ runPrimary }, { createLogger }] = await Promise.all([
      import('./workers/primary.ts'),
      import('./observability/logger.ts'),
    ]);
    flushCompileCache();
    // The primary forwards sockets and holds the workers' store: what it loaded is all it needs.
    releaseStartupGarbage();
    releaseOptimizers();
    const logger = createLogger(config.logLevel, logDestination).child({ role: 'primary' });
    await runPrimary({ config, count: workers, logger, generatedToken: generated });
    return;
  }
  const [{ buildApp }, { ChildRegistry }] = await Promise.all([
    import('./app.ts'),
    import('./upstream/child-registry.ts'),
  ]);
  // Written now rather than at exit: a proxy ends by a signal, and the cache is not written then.
  flushCompileCache();
  // Stdio children alive now: a forced exit kills them, since it cannot wait for their close.
  const children = new ChildRegistry();
  process.once('exit', () => children.killAll());
  // A worker without Redis reaches the store its primary holds (issue 19).
  const store = cluster.isWorker ? await clusterStore(config) : undefined;
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp(config, {
      children,
      ...(logDestination ? { logDestination } : {}),
      ...(store ? { store } : {}),
    });
  } catch (error) {
    // A setting only checkable by using it (an AUDIT_LOG file that cannot be opened).
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  const waysIn = otherWaysIn(config);
  if (waysIn !== undefined) app.log.warn(`no PROXY_TOKEN is configured: ${waysIn}`);
  if (config.corsOrigins.includes('*')) {
    app.log.warn('CORS_ORIGINS is "*": any web page can call this proxy if it also holds a proxy token');
  }
  await app.ready();
  releaseStartupGarbage();
  releaseOptimizers();
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    const reason = listenFailure(error, config);
    if (reason === undefined) throw error;
    // One line the operator can act on, not a stack trace (issue 14 #18).
    process.stderr.write(`${reason}\n`);
    process.exit(1);
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // SIGTERM is a planned stop (a rolling restart): not ready first, so a load balancer sends
    // no more, while what it already sent is served. Ctrl-C does not wait for that.
    const delay = signal === 'SIGTERM' ? config.drainDelayMs : 0;
    app.drain.unready();
    app.log.info({ signal, drainDelayMs: delay }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      app.log.warn(
        { timeoutMs: config.shutdownTimeoutMs, children: children.size },
        'shutdown timed out; killing stdio servers and exiting',
      );
      children.killAll();
      process.exit(1);
    }, config.shutdownTimeoutMs + delay);
    force.unref();
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    // Stop accepting; keep-alive clients get their next answer with Connection: close, and
    // connections idle longer than their client (a load balancer) keeps one are closed.
    await app.drain.quiet({
      boundMs: config.shutdownTimeoutMs / 2,
      idleMs: config.drainIdleMs,
      // Under WORKERS the primary holds the listener: wait for its word that it is closed.
      listenerClosed: cluster.isWorker
        ? async () => (await import('./workers/listener-gate.ts')).listenerClosed(PRIMARY)
        : undefined,
    });
    app.close().then(
      () => {
        app.log.info('shut down cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        app.log.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  const reload = async () => {
    // Re-read everything; a bad configuration is reported and the running one kept.
    try {
      const next = loadConfig({ env: process.env, dotenvPath: resolve(process.env.DOTENV_PATH ?? '.env') });
      // What the new configuration uses and the running one did not is loaded first (issue #16).
      await app.prepareReload(next);
      // The reloaded file is authoritative: the generated token lives on only while no token at
      // all is configured; any configured one (plain or by digest) ends it for good, so a later
      // file without tokens leaves the proxy refusing everyone (issue 14 #3).
      const keepGenerated = generated !== undefined && configuresNoCredential(next);
      const restart = app.reload(
        keepGenerated ? { ...next, proxyTokens: Object.freeze([generated as string]) } : next,
      );
      if (!keepGenerated) generated = undefined;
      if (configuresNoCredential(next) && !keepGenerated)
        app.log.warn('no proxy token is configured: every request is refused until one is');
      app.log.info({ restartNeededFor: restart }, 'configuration reloaded');
    } catch (error) {
      app.log.error(
        { reason: (error as Error).message },
        'configuration reload failed; keeping the running configuration',
      );
    }
  };
  process.on('SIGHUP', () => void reload());
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

/** A worker's IPC channel to its primary (a send once the primary is gone is dropped). */
const PRIMARY: IpcPort = {
  send: (message, done) => process.send?.(message, undefined, undefined, done),
  on: (event, listener) => process.on(event, listener),
  off: (event, listener) => process.off(event, listener),
};

/** A worker's store: Redis when configured (each worker connects), else the primary's over IPC. */
async function clusterStore(config: Config) {
  const [{ primaryHoldsStore }, { ClusterStore }] = await Promise.all([
    import('./workers/primary.ts'),
    import('./store/cluster-store.ts'),
  ]);
  // A counter the primary does not answer is the rate limiter's to warn of (app.ts).
  return primaryHoldsStore(config) ? new ClusterStore(PRIMARY) : undefined;
}

/** Readable logs on a terminal, JSON lines elsewhere (log shippers), unless LOG_FORMAT says. */
function prettyLogs(format: Config['logFormat']): boolean {
  return format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
}

/** pino-pretty in pino's transport worker, loaded only when used (it is not needed for JSON). */
function prettyDestination(): DestinationStream {
  return pino.transport({
    target: 'pino-pretty',
    options: {
      colorize: process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service',
    },
  });
}

/** The one-line explanation of a failed listen the operator can fix, if it is one. */
function listenFailure(error: unknown, config: Config): string | undefined {
  const where = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return `Cannot listen on ${where}: the port is already in use. Stop what holds it, or set PORT (and HOST) to another.`;
    case 'EACCES':
      return `Cannot listen on ${where}: permission denied (ports below 1024 need privileges). Set PORT to 1024 or above.`;
    case 'EADDRNOTAVAIL':
      return `Cannot listen on ${where}: HOST is not an address of this machine. Set HOST (0.0.0.0 for every interface).`;
    default:
      return undefined;
  }
}

/**
 * True when no caller could authenticate: no plain token, no grant by digest, no admin token
 * (which mints user tokens) and no OIDC issuer. Only then is a shared token generated: a
 * deployment that signs its callers in with OIDC or minted tokens must not get a secret it did
 * not ask for.
 */
function configuresNoCredential(config: Config): boolean {
  return (
    config.proxyTokens.length === 0 &&
    config.tokens.length === 0 &&
    config.adminToken === undefined &&
    config.oidc.issuer === undefined &&
    config.oidc.issuers.length === 0
  );
}

/**
 * How callers authenticate when no plain or config-file token is configured but something else
 * is (issue 17), for the start-up warning; `undefined` otherwise. Issuer URLs are not secrets.
 */
function otherWaysIn(config: Config): string | undefined {
  if (config.proxyTokens.length > 0 || config.tokens.length > 0) return undefined;
  const issuers = [
    ...new Set([
      ...(config.oidc.issuer === undefined ? [] : [config.oidc.issuer]),
      ...config.oidc.issuers.map((entry) => entry.issuer),
    ]),
  ];
  const ways = [
    ...(issuers.length === 0
      ? []
      : [`OIDC bearer tokens (Authorization: Bearer) from ${issuers.join(', ')}`]),
    ...(config.adminToken === undefined
      ? []
      : ['tokens minted with ADMIN_TOKEN (POST /auth/tokens or npm run token), and ADMIN_TOKEN itself']),
  ];
  return ways.length === 0 ? undefined : `callers authenticate with ${ways.join('; ')}`;
}

await main();
