/**
 * @module store/open-store
 * Picks the {@link Store} a configuration asks for: `STORE=auto` (the default) means Redis when
 * `REDIS_URL` is set, else the embedded `node:sqlite` file under `DATA_DIR`.
 */
import type { Clock } from '../clock.ts';
import { MEMORY_STORE_MAX_KEYS, MemoryStore } from './memory-store.ts';
import type { Store, StoreKind } from './store.ts';

/** The settings that choose a store. */
export interface StoreSettings {
  readonly store: 'auto' | StoreKind;
  readonly dataDir: string;
  readonly redisUrl?: string | undefined;
}

/** An opened store and which kind it is. */
export interface OpenedStore {
  readonly store: Store;
  readonly kind: StoreKind;
  /** Redis only: whether it answered within the first seconds (the proxy starts either way). */
  readonly ready: boolean;
}

/**
 * The namespace of resumable answer logs (virtual/answer-events.ts): what the proxy does without
 * when the store refuses it (the stream is served, not resumable).
 */
export const ANSWER_LOGS_NAMESPACE = 'virtual-answers:';

/**
 * Principals whose answer logs, each at its share, fill the answer logs' half of the memory
 * store: six, so that a share (8,333 of STORE=memory's 50,000) holds what one principal may log
 * (answer-events.ts: 32 logs a day of 257 keys at most, 8,224): the share never refuses a
 * principal within its own bound.
 */
export const ANSWER_LOG_SHARES = 6;

/**
 * The memory store (`STORE=memory`) of `maxKeys` keys: answer logs take at most half of them
 * (a principal's take up to 32 x 257 keys), so they never crowd out what must be written
 * (revocations, mint records, session ends, counters); one principal's (its keys are grouped
 * by principal: answer-events.ts) at most 1/{@link ANSWER_LOG_SHARES} of that half, so one
 * principal never makes the others' streams unresumable.
 */
export function memoryStore(clock: Clock, maxKeys = MEMORY_STORE_MAX_KEYS): MemoryStore {
  const answerLogKeys = Math.floor(maxKeys / 2);
  return new MemoryStore(clock, maxKeys, [
    {
      prefix: ANSWER_LOGS_NAMESPACE,
      maxKeys: answerLogKeys,
      maxPerGroup: Math.floor(answerLogKeys / ANSWER_LOG_SHARES),
    },
  ]);
}

/** The kind `settings` resolve to. */
export function storeKind(settings: StoreSettings): StoreKind {
  if (settings.store !== 'auto') return settings.store;
  return settings.redisUrl === undefined ? 'sqlite' : 'redis';
}

/** Opens the configured store. `onError` hears Redis trouble (throttle it: it can repeat). */
export async function openStore(
  settings: StoreSettings,
  deps: { readonly clock: Clock; readonly onError: (error: Error) => void },
): Promise<OpenedStore> {
  const kind = storeKind(settings);
  if (kind === 'memory') return { store: memoryStore(deps.clock), kind, ready: true };
  // The other two load only when chosen: ioredis costs ~8 MiB of a fresh process (issue 16).
  if (kind === 'sqlite') {
    const { SqliteStore } = await import('./sqlite-store.ts');
    return { store: new SqliteStore(settings.dataDir, deps.clock), kind, ready: true };
  }
  if (settings.redisUrl === undefined) throw new Error('STORE=redis needs REDIS_URL');
  const { RedisStore } = await import('./redis-store.ts');
  const redis = new RedisStore(settings.redisUrl, deps.onError);
  return { store: redis, kind, ready: await redis.ready() };
}
