/**
 * Stdio fixtures run as children of the proxy, which passes them only a few environment
 * variables (upstream/stdio.ts). `npm test` sets NODE_COMPILE_CACHE so every process of the run
 * reuses what another already stripped and compiled; a fixture child gets it through its server's
 * `env` in the proxy config. A child started per session (the bridge starts dozens) then skips
 * most of its start-up.
 *
 * @module
 */

/** `{ NODE_COMPILE_CACHE }` when the run has one, else nothing: a stdio server's `env`. */
export function compileCacheEnv(): Record<string, string> {
  const dir = process.env.NODE_COMPILE_CACHE;
  return dir === undefined ? {} : { NODE_COMPILE_CACHE: dir };
}
