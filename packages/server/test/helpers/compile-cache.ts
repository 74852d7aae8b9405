/**
 * `npm test` sets NODE_COMPILE_CACHE so every process of the run reuses what another already
 * stripped and compiled. Children started with an environment of their own do not inherit it:
 * stdio fixtures run by the proxy (it passes them only a few variables, upstream/stdio.ts) get it
 * through their server's `env` in the proxy config, `npm run token` children through theirs. A
 * child started per session (the bridge starts dozens) then skips most of its start-up.
 *
 * @module
 */

/** `{ NODE_COMPILE_CACHE }` when the run has one, else nothing: for a child's environment. */
export function compileCacheEnv(): Record<string, string> {
  const dir = process.env.NODE_COMPILE_CACHE;
  return dir === undefined ? {} : { NODE_COMPILE_CACHE: dir };
}
