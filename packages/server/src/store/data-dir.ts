/**
 * @module store/data-dir
 * Files the proxy keeps under `DATA_DIR` beside the embedded store: generated keys (token
 * signing, the OAuth vault). The folder is owner-only; a generated file is written once, and
 * every process on the machine (other instances, `npm run token`) uses the first one written.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a generated key lives, and whether it may live on disk at all. */
export interface GeneratedKeyPlace {
  readonly dataDir: string;
  /** Keep a generated key in memory only (`STORE=memory`: nothing on disk, lost on restart). */
  readonly ephemeral?: boolean | undefined;
}

/**
 * Writes `DATA_DIR/<name>` (owner-only) unless it exists, and returns its path. `wx`: when another
 * process got there first, its file is the one to use. Other write failures throw.
 */
export function writeOnce(dataDir: string, name: string, content: string): string {
  const path = join(dataDir, name);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, content, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return path;
}
