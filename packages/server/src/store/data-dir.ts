/**
 * @module store/data-dir
 * Files the proxy keeps under `DATA_DIR` beside the embedded store: generated keys (token
 * signing, the OAuth vault). The folder is owner-only; a generated file is written once, and
 * every process on the machine (other instances, `npm run token`) uses the first one written.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a generated key lives, and whether it may live on disk at all. */
export interface GeneratedKeyPlace {
  readonly dataDir: string;
  /** Keep a generated key in memory only (`STORE=memory`: nothing on disk, lost on restart). */
  readonly ephemeral?: boolean | undefined;
}

/**
 * Writes `DATA_DIR/<name>` (owner-only) unless it exists, and returns its path: when another
 * process got there first, its file is the one to use. The content is written to a file of this
 * process's own and then linked under the name (link fails when the name exists), so no process
 * ever reads a file another is still writing: an exclusive create (`wx`) makes the name appear
 * empty before its content. Other write failures throw.
 */
export function writeOnce(dataDir: string, name: string, content: string): string {
  const path = join(dataDir, name);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const draft = join(dataDir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    writeFileSync(draft, content, { flag: 'wx', mode: 0o600 });
    linkSync(draft, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return path;
    // A file system without hard links (some network and FUSE mounts): the exclusive create.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw error;
    try {
      writeFileSync(path, content, { flag: 'wx', mode: 0o600 });
    } catch (fallback) {
      if ((fallback as NodeJS.ErrnoException).code !== 'EEXIST') throw fallback;
    }
  } finally {
    rmSync(draft, { force: true });
  }
  return path;
}
