/**
 * @module upstream/child-registry
 * The stdio server processes alive right now, so a forced exit can take them along (issue
 * #14.10): `process.exit()` does not wait for a graceful close, and a child that ignores the end
 * of its stdin would outlive the proxy. One registry per app, passed in; never a module global.
 */
import type { ChildProcess } from 'node:child_process';

/** Live child processes, each removed when it exits. */
export class ChildRegistry {
  readonly #live = new Set<ChildProcess>();

  /** Tracks `child` until it exits. */
  track(child: ChildProcess): void {
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.#live.add(child);
    child.once('exit', () => this.#live.delete(child));
  }

  /** Number of children alive. */
  get size(): number {
    return this.#live.size;
  }

  /**
   * Kills every child at once, synchronously: for the moment just before `process.exit()`,
   * when there is no time left for the SIGTERM grace a normal close gives. SIGKILL cannot be
   * ignored, so nothing outlives the proxy.
   */
  killAll(): void {
    for (const child of this.#live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already gone (ESRCH): nothing to do.
      }
    }
    this.#live.clear();
  }
}
