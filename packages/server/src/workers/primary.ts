/**
 * @module workers/primary
 * `WORKERS=N|auto` (issue 19): the primary process of a `node:cluster`. It stays small (no
 * Fastify, no routes): it forks N workers that share the port, holds the embedded store and
 * serves it to them over IPC when there is no `REDIS_URL` (store/store-host.ts), restarts a
 * worker that dies, forwards SIGHUP (reload) and SIGTERM/SIGINT (drain, then stop), and on
 * SIGUSR2 replaces the workers one at a time (a new one listens before an old one drains), so
 * new code or restart-only settings take effect without refusing a request.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { SYSTEM_CLOCK } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { IpcPort } from '../store/cluster-store.ts';
import { openStore, storeKind } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { StoreHost } from '../store/store-host.ts';

/** The environment variable that hands workers the primary's generated token (never logged). */
export const GENERATED_TOKEN_ENV = 'MCP_PROXY_GENERATED_TOKEN';
/** Unexpected deaths within this window slow restarts down (a crash loop must not spin). */
const CRASH_WINDOW_MS = 60_000;
const MAX_RESTART_DELAY_MS = 10_000;

/** What the primary needs. */
export interface PrimaryOptions {
  readonly config: Config;
  /** Workers to run (WORKERS resolved). */
  readonly count: number;
  readonly logger: Logger;
  /** The token the primary generated (no credential configured), for every worker. */
  readonly generatedToken?: string | undefined;
}

/** Whether a store call from workers goes through the primary (no Redis to share). */
export function primaryHoldsStore(config: Config): boolean {
  return storeKind(config) !== 'redis';
}

/** Runs the cluster until a stop signal; exits the process when every worker is gone. */
export async function runPrimary(options: PrimaryOptions): Promise<void> {
  const { config, count, logger } = options;
  let store: Store | undefined;
  let host: StoreHost | undefined;
  if (primaryHoldsStore(config)) {
    const opened = await openStore(config, { clock: SYSTEM_CLOCK, onError: () => {} });
    store = opened.store;
    host = new StoreHost(store);
  }
  const env = options.generatedToken === undefined ? {} : { [GENERATED_TOKEN_ENV]: options.generatedToken };
  /** Workers we asked to stop (a rolling restart): their exit is expected. */
  const retiring = new Set<Worker>();
  const detach = new Map<Worker, () => void>();
  const deaths: number[] = [];
  let stopping = false;
  let failed = false;
  let rolling = false;
  /** Whether any worker has listened: before, a death is a start-up failure all would share. */
  let served = false;

  const fork = (): Worker => {
    const worker = cluster.fork(env);
    if (host !== undefined) detach.set(worker, host.attach(ipcPortOf(worker)));
    worker.once('listening', () => {
      served = true;
    });
    worker.once('exit', (code, signal) => onExit(worker, code, signal));
    return worker;
  };

  const onExit = (worker: Worker, code: number | null, signal: string | null) => {
    detach.get(worker)?.();
    detach.delete(worker);
    const expected = stopping || retiring.delete(worker);
    if (!expected) {
      logger.error({ worker: worker.id, code, signal }, 'worker died');
      if (!served) {
        // None has served yet (a busy port, a bad setting): another would fail the same way.
        failed = true;
        stop('SIGTERM');
      } else {
        const now = Date.now();
        deaths.push(now);
        while (deaths.length > 0 && (deaths[0] as number) < now - CRASH_WINDOW_MS) deaths.shift();
        const delay = Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (deaths.length - 1));
        setTimeout(() => {
          if (!stopping) fork();
        }, delay).unref();
      }
    } else if (code !== 0 && code !== null && stopping) failed = true;
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) void finish();
  };

  const finish = async () => {
    await store?.close();
    logger.info('all workers stopped');
    process.exit(failed ? 1 : 0);
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping workers');
    const force = setTimeout(
      () => {
        logger.warn('workers did not stop in time; killing them');
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
        process.exit(1);
      },
      config.shutdownTimeoutMs + config.drainDelayMs + 2_000,
    );
    force.unref();
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) void finish();
    for (const worker of workers) worker?.process.kill(signal);
  };

  /** Replaces every worker in turn: the new one listens before the old one drains. */
  const roll = async () => {
    if (rolling || stopping) return;
    rolling = true;
    logger.info('rolling restart of the workers');
    try {
      for (const old of Object.values(cluster.workers ?? {})) {
        if (old === undefined || stopping) break;
        const next = fork();
        const up = await new Promise<boolean>((resolve) => {
          next.once('listening', () => resolve(true));
          next.once('exit', () => resolve(false));
        });
        if (!up) {
          logger.error('a new worker did not start: the rolling restart stops here');
          return;
        }
        retiring.add(old);
        const gone = new Promise((resolve) => old.once('exit', resolve));
        old.process.kill('SIGTERM');
        await gone;
      }
      logger.info('rolling restart done');
    } finally {
      rolling = false;
    }
  };

  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
  process.on('SIGUSR2', () => void roll());
  logger.info(
    { workers: count, store: store === undefined ? 'redis' : storeKind(config) },
    'starting workers',
  );
  // STORE=memory keeps generated keys in each process: a token one worker mints (or a vault
  // entry it seals) would mean nothing to the others.
  if (storeKind(config) === 'memory' && (config.signingKeys.length === 0 || config.vaultKeys.length === 0))
    logger.warn(
      'STORE=memory with WORKERS: each worker generates its own signing and vault keys; set SIGNING_KEYS and VAULT_KEY, or use STORE=sqlite',
    );
  for (let i = 0; i < count; i++) fork();
}

/** A worker's IPC channel as the store host sees it; a send to a worker gone fails. */
function ipcPortOf(worker: Worker): IpcPort {
  return {
    send: (message, done) => {
      if (worker.isConnected()) worker.send(message as object, undefined, done);
      else done(new Error('the worker is gone'));
    },
    on: (event, listener) => worker.on(event, listener),
    off: (event, listener) => worker.off(event, listener),
  };
}
