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
 * `NODE_COMPILE_CACHE` wins), re-executes the process with `NODE_COMPILE_CACHE` set to it; it
 * re-executes too when the process lacks one of `v8Flags`, which only take effect where V8 makes
 * its heap (startup-memory.ts), adding them ahead of the flags it was given. Returns only when no
 * re-execution happened: nothing was missing, an IPC channel (a cluster worker, a forking parent)
 * or a debugger would not survive the exec, or the platform has no `execve` (Windows). The
 * process then carries on as it is, the modules it loads later still cached where the cache
 * could be enabled.
 */
export function startWithCompileCache(directory: string, v8Flags: readonly string[] = []): void {
  // A process started with the variable set (by the operator, or by the exec below) never execs
  // for it: should Node have failed to enable the cache from it, this call may have, and must
  // not loop. The flags, once added, are in `execArgv`: no loop either.
  const enabled = enableCompileCache(directory).status === constants.compileCacheStatus.ENABLED;
  const cache =
    enabled && process.env.NODE_COMPILE_CACHE === undefined ? { NODE_COMPILE_CACHE: directory } : {};
  const flags = v8Flags.filter((flag) => !process.execArgv.includes(flag));
  if (Object.keys(cache).length === 0 && flags.length === 0) return;
  if (process.channel !== undefined || process.execve === undefined) return;
  if (process.execArgv.some((flag) => flag.startsWith('--inspect') || flag.startsWith('--debug'))) return;
  try {
    process.execve(
      process.execPath,
      [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)],
      { ...process.env, ...cache },
    );
  } catch {
    // execve(2) failed (the binary moved, a seccomp policy): the process is unchanged, and keeps
    // the type stripper it already holds.
  }
}
