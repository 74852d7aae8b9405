/**
 * @module startup-memory
 * What the entry does so that a fresh proxy holds little memory before its first request (issue
 * #16): the optimizing compilers wait until the modules are loaded, and one compacting collection
 * runs before it listens. Both act on the process's own V8, so only the entry (main.ts) calls them.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8 flags naming the optimizing tiers: an operator who set one decides them alone. */
const TIER_FLAGS = /--(no-)?(turbofan|maglev|opt|jitless)\b/;

/**
 * Turns V8's optimizing compilers (Maglev, TurboFan) off while the proxy loads its modules and
 * returns the function that turns them on again. Loading runs module bodies (zod's schema
 * builders, Fastify's set-up) often enough for V8 to optimize them once, never to run them
 * again; each compiler it starts touches its own code in the `node` binary, ~7 MiB of pages an
 * idle process then keeps (a process that only loads zod: 62 MiB RSS, 54 without them). Code
 * that runs hot once the proxy serves is optimized as before, from the feedback gathered since.
 * Flags the operator gave (`NODE_OPTIONS`, the command line) are left as they are.
 */
export function holdOptimizersBack(): () => void {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((flag) => TIER_FLAGS.test(flag));
  if (given) return () => {};
  setFlagsFromString('--no-maglev');
  setFlagsFromString('--no-turbofan');
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    setFlagsFromString('--turbofan');
    setFlagsFromString('--maglev');
  };
}

/**
 * One full, compacting garbage collection once everything is loaded, before the first request
 * (issue #16: start-up memory). Loading the ~700 modules grows V8's young generation to its
 * largest size and leaves parse-time garbage in the old one; an idle process never shrinks
 * them, so a fresh proxy held about 20 MiB of RSS it did not use. It costs ~60 ms, once; under
 * load the young generation grows back as V8 sees fit (docs/performance.md, "the c=1 p99").
 */
export function releaseStartupGarbage(): void {
  type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
  const exposed = (globalThis as { gc?: Gc }).gc;
  // Without --expose-gc, the flag is on just long enough to take `gc` from a fresh context,
  // then off again so no later context (vm, workers) gets it.
  if (exposed === undefined) setFlagsFromString('--expose-gc');
  try {
    const gc = exposed ?? (runInNewContext('gc') as Gc);
    // 'last-resort' is the collection that also returns the emptied pages to the system.
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } finally {
    if (exposed === undefined) setFlagsFromString('--no-expose-gc');
  }
}
