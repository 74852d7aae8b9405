/**
 * @module compile-cache
 * Node's compile cache for the proxy's own process (issue #16: start-up memory). Node strips the
 * types of every `.ts` file it loads with a WebAssembly compiler that, once instantiated, holds
 * ~15 MiB for the life of the process. The compile cache keeps its output, so a later start loads
 * those files without it; but only `NODE_COMPILE_CACHE` in the environment covers the entry
 * file, which Node strips before any of its code runs. So the entry turns the cache on and, if
 * the environment did not, replaces its own process image (same pid, same standard streams,
 * nothing read or served yet) with one whose environment names the cache: that start strips
 * nothing. Its children inherit the setting: cluster workers (the same files, so the same gain);
 * stdio servers get only a fixed list of variables (upstream/stdio.ts), not this one.
 */
import { constants, enableCompileCache } from 'node:module';

/**
 * Enables the compile cache in `directory` and, when it was not already on (the environment's
 * `NODE_COMPILE_CACHE` wins), re-executes the process with `NODE_COMPILE_CACHE` set to it.
 * Returns only when no re-execution happened: the cache was already on, cannot be written there
 * or is disabled (`NODE_DISABLE_COMPILE_CACHE`), an IPC channel (a cluster worker, a forking
 * parent) or a debugger would not survive the exec, or the platform has no `execve` (Windows).
 * The process then carries on as it is, the modules it loads later still cached.
 */
export function startWithCompileCache(directory: string): void {
  if (enableCompileCache(directory).status !== constants.compileCacheStatus.ENABLED) return;
  // A process started with the variable set (by the operator, or by the exec below) never execs:
  // should Node have failed to enable the cache from it, this call may have, and must not loop.
  if (process.env.NODE_COMPILE_CACHE !== undefined) return;
  if (process.channel !== undefined || process.execve === undefined) return;
  if (process.execArgv.some((flag) => flag.startsWith('--inspect') || flag.startsWith('--debug'))) return;
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      NODE_COMPILE_CACHE: directory,
    });
  } catch {
    // execve(2) failed (the binary moved, a seccomp policy): the process is unchanged, and keeps
    // the type stripper it already holds.
  }
}
