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
 *
 * Node's warning about flags changed after start is general; for these two it does not apply:
 * Node keeps V8's flags unfrozen for `setFlagsFromString` (node.cc), V8 reads both at each
 * tiering decision (`maglev::IsMaglevEnabled()` is `v8_flags.maglev`) and builds the Maglev
 * dispatcher whatever their value, and both end as they began (their implications, worked out
 * at start, still hold). No optimizing job exists while they are off, so none races with the
 * writes. A function hot while they were off is optimized (TurboFan) once they are on again.
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

/** V8 flags sizing the young generation: an operator who set one decides it alone. */
const YOUNG_FLAGS = /--(min|max)[-_]semi[-_]space[-_]size|--semi[-_]space/;
/** The floor of each of the young generation's two semi-spaces, in MiB (V8's own: 1). */
const MIN_SEMI_SPACE_MIB = 8;

/**
 * The V8 flags a proxy process starts with (the entry re-executes itself to add them, since V8
 * reads them only where it makes its heap): a floor under the young generation. The start-up
 * compaction ({@link releaseStartupGarbage}) shrinks it to its minimum, V8's 1 MiB per
 * semi-space, and at low concurrency V8 never grows it back: at c=1, 25–30 scavenges per 1,000
 * requests, so more than 1% of requests met one, which set the c=1 p99 (docs/performance.md,
 * "the c=1 p99"). With 8 MiB, about 4 per 1,000, and a fifth of the scavenging time. It costs no
 * RSS at start (the emptied semi-spaces hold no pages) and, at most, 2 × 7 MiB more once traffic
 * has run through them, which a busy proxy (c=64) spends anyway: V8 grows the young generation
 * to 16 MiB semi-spaces there.
 */
export function startupV8Flags(): string[] {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((flag) => YOUNG_FLAGS.test(flag));
  return given ? [] : [`--min-semi-space-size=${MIN_SEMI_SPACE_MIB}`];
}

/**
 * One full, compacting garbage collection once everything is loaded, before the first request
 * (issue #16: start-up memory). Loading the ~700 modules grows V8's young generation to its
 * largest size and leaves parse-time garbage in the old one; an idle process never shrinks
 * them, so a fresh proxy held about 20 MiB of RSS it did not use. It costs ~60 ms, once; the
 * young generation then has the floor {@link startupV8Flags} gives it, and grows as V8 sees fit.
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
