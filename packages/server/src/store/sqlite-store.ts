/**
 * @module store/sqlite-store
 * The embedded default {@link Store}: `node:sqlite` in a file under `DATA_DIR`, so revocations,
 * signing keys' companions and (issue 18) the OAuth vault survive a restart with nothing to
 * install. One process owns it for serving (the `npm run token` command may open it alongside:
 * WAL mode and a busy timeout let both write). Rate counters and pub/sub stay in this process:
 * counting every request on disk buys nothing when no other instance reads the counts. The file
 * is opened (and created) on the first read or write, so a proxy that never mints a token or
 * keeps anything leaves no file behind.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type Clock, SYSTEM_CLOCK } from '../clock.ts';
import { InProcessParts } from './in-process-parts.ts';
import type { Store } from './store.ts';

/** The database file's name under `DATA_DIR`. */
export const SQLITE_FILE = 'mcp-proxy.sqlite';
/** How often expired rows are deleted. */
const SWEEP_EVERY_MS = 60_000;

/** Shared state in a SQLite file. */
interface Statements {
  readonly db: DatabaseSync;
  readonly get: StatementSync;
  readonly set: StatementSync;
  readonly insert: StatementSync;
  readonly dropExpired: StatementSync;
  readonly delete: StatementSync;
  readonly deleteIf: StatementSync;
  readonly replaceIf: StatementSync;
  readonly sweep: StatementSync;
}

/** Opens (creating it, owner-only) the database and prepares the statements. */
function open(dataDir: string): Statements {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, SQLITE_FILE);
  const db = new DatabaseSync(file);
  chmodSync(file, 0o600);
  // The busy timeout first: switching to WAL takes a lock that several processes opening the
  // file at once (a proxy and `npm run token`s) would otherwise fail on at once (SQLITE_BUSY).
  db.exec(`
    PRAGMA busy_timeout = 2000;
    PRAGMA journal_mode = WAL;
    CREATE TABLE IF NOT EXISTS kv (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      expires_at INTEGER
    ) STRICT;
  `);
  const live = '(expires_at IS NULL OR expires_at > ?)';
  return {
    db,
    get: db.prepare(`SELECT value FROM kv WHERE key = ? AND ${live}`),
    set: db.prepare('INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)'),
    insert: db.prepare('INSERT OR IGNORE INTO kv (key, value, expires_at) VALUES (?, ?, ?)'),
    dropExpired: db.prepare('DELETE FROM kv WHERE key = ? AND expires_at <= ?'),
    delete: db.prepare(`DELETE FROM kv WHERE key = ? AND ${live}`),
    deleteIf: db.prepare(`DELETE FROM kv WHERE key = ? AND value = ? AND ${live}`),
    replaceIf: db.prepare(`UPDATE kv SET value = ?, expires_at = ? WHERE key = ? AND value = ? AND ${live}`),
    sweep: db.prepare('DELETE FROM kv WHERE expires_at <= ?'),
  };
}

/** Shared state in a SQLite file. */
export class SqliteStore extends InProcessParts implements Store {
  readonly #dataDir: string;
  readonly #now: () => number;
  readonly #stopSweep: () => void;
  #statements: Statements | undefined;

  /** A store in `DATA_DIR/mcp-proxy.sqlite`; nothing is opened until first used. */
  constructor(dataDir: string, clock: Clock = SYSTEM_CLOCK) {
    const now = () => clock.now();
    super(now);
    this.#dataDir = dataDir;
    this.#now = now;
    this.#stopSweep = clock.every(SWEEP_EVERY_MS, () => this.#statements?.sweep.run(this.#now()));
  }

  async get(key: string): Promise<string | undefined> {
    const row = this.#sql().get.get(key, this.#now()) as { value: string } | undefined;
    return row?.value;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.#sql().set.run(key, value, this.#expiry(ttlMs));
  }

  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<boolean> {
    const sql = this.#sql();
    sql.dropExpired.run(key, this.#now());
    return Number(sql.insert.run(key, value, this.#expiry(ttlMs)).changes) > 0;
  }

  async delete(key: string): Promise<boolean> {
    return Number(this.#sql().delete.run(key, this.#now()).changes) > 0;
  }

  async deleteIf(key: string, value: string): Promise<boolean> {
    return Number(this.#sql().deleteIf.run(key, value, this.#now()).changes) > 0;
  }

  async replaceIf(key: string, expected: string, value: string, ttlMs?: number): Promise<boolean> {
    const changes = this.#sql().replaceIf.run(value, this.#expiry(ttlMs), key, expected, this.#now()).changes;
    return Number(changes) > 0;
  }

  async close(): Promise<void> {
    this.#stopSweep();
    await this.closeParts();
    if (this.#statements?.db.isOpen) this.#statements.db.close();
    this.#statements = undefined;
  }

  #sql(): Statements {
    this.#statements ??= open(this.#dataDir);
    return this.#statements;
  }

  #expiry(ttlMs: number | undefined): number | null {
    return ttlMs === undefined ? null : this.#now() + ttlMs;
  }
}
