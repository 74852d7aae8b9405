/**
 * @module bench/lib/env
 * Where things are and the knobs of a run, all in one literal. Every knob can be overridden
 * from the environment (`BENCH_*`), e.g. `BENCH_QUICK=1 npm run bench` for a smoke run.
 */
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The bench folder. */
export const BENCH = fileURLToPath(new URL('../', import.meta.url));
/** Git-ignored cache for tools the bench installs (peer proxies). */
export const CACHE = fileURLToPath(new URL('../.cache/', import.meta.url));
/** Git-ignored output folder. */
export const RESULTS = fileURLToPath(new URL('../results/', import.meta.url));
/** Node running the bench (Node 24 under `npm run bench`): also runs every Node child. */
export const NODE = process.execPath;

/** The core the proxy and its upstream share. */
export const SERVER_CORES = process.env.BENCH_SERVER_CORES ?? '0';
/** The core the load generators (and this orchestrator) use. */
export const LOAD_CORES = process.env.BENCH_LOAD_CORES ?? '1';

const quick = process.env.BENCH_QUICK === '1';

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : Number(raw);
}

/** The knobs of a run. */
export const SETTINGS = {
  /** Seconds measured per point (whole seconds: wrk takes no fractions). */
  seconds: num('BENCH_SECONDS', quick ? 1 : 3),
  /** Seconds of unmeasured load before each point (connections open, JIT warm); 0 for none. */
  warmupSeconds: num('BENCH_WARMUP_SECONDS', 1),
  /** Repetitions of every configuration, interleaved. */
  repeats: num('BENCH_REPEATS', quick ? 1 : 3),
  /** HTTP concurrency points. */
  concurrency: (process.env.BENCH_CONCURRENCY ?? '1,8,64,256').split(',').map(Number),
  /** Idle WebSockets and /mcp sessions at which RSS per connection is taken. */
  idleCounts: (process.env.BENCH_IDLE_COUNTS ?? (quick ? '200,1000' : '1000,10000')).split(',').map(Number),
  /** Requests for the leak check (scaled down to fit the time budget; the report says so). */
  leakRequests: num('BENCH_LEAK_REQUESTS', quick ? 40_000 : 1_000_000),
  /** Requests after which the leak check's baseline RSS is taken. */
  leakBaseline: num('BENCH_LEAK_BASELINE', quick ? 20_000 : 100_000),
  /** Whole-run time budget in seconds; the leak check gets what is left of it. */
  budgetSeconds: num('BENCH_BUDGET_SECONDS', quick ? 270 : 680),
  /** Sections to run (comma list): startup, http, event-stream, ws, relay, info, everything, peers,
   * memory, profile, leak, and the optional leakpaths and workers (WORKERS=2 against one process).
   * Default: all but the optional ones. */
  only: (process.env.BENCH_ONLY ?? '').split(',').filter((s) => s !== ''),
  /** HTTP paths measured in the http and event-stream sections (comma list of path names, e.g.
   * `POST /proxy,/mcp`); default: all but the opt-in `/mcp (bridged WS)`. With `profile`, the
   * profiled paths among those named. */
  paths: (process.env.BENCH_PATHS ?? '').split(',').filter((s) => s !== ''),
  /** Another checkout of the repository (e.g. `git worktree add /tmp/base HEAD`): its proxy is
   * measured too, interleaved, as `POST /proxy (baseline)` and `/mcp (baseline)` (and its start-up
   * memory as `proxy (baseline)`). */
  baselineRoot: process.env.BENCH_BASELINE_ROOT ?? '',
  /** How the fast upstream answers in every section but event-stream (which always gets
   * event-stream answers): `json` (the default) or `event-stream`, e.g. to profile the
   * event-stream path with `BENCH_ONLY=profile`. */
  upstreamAnswers: answerMode(process.env.BENCH_UPSTREAM_ANSWERS),
  /** CPU the fast upstream spends (spinning) before each HTTP answer, in µs (0: none): to see what
   * an upstream's own cost on the shared core does to the proxy's CPU per request (issue 16). */
  upstreamWorkUs: num('BENCH_UPSTREAM_WORK_US', 0),
  /** What the profile section loads the proxy against: `fast` (the fast upstream, the default) or
   * `everything` (`@modelcontextprotocol/server-everything`, one session per path, as the
   * everything section measures it; `POST /proxy` and `/mcp` only). */
  profileUpstream: profileUpstream(process.env.BENCH_PROFILE_UPSTREAM),
  /** A results JSON to compare the event-stream and start-up figures with; default: for each
   * figure, the newest earlier file in bench/results/ that has it. */
  previous: process.env.BENCH_PREVIOUS ?? '',
} as const;

/** How the fast upstream answers a request (see servers/fast-upstream.ts). */
export type AnswerMode = 'json' | 'event-stream';

function answerMode(raw: string | undefined): AnswerMode {
  if (raw === undefined || raw === '' || raw === 'json') return 'json';
  if (raw === 'event-stream') return raw;
  throw new Error(`BENCH_UPSTREAM_ANSWERS must be json or event-stream, not ${raw}`);
}

function profileUpstream(raw: string | undefined): 'fast' | 'everything' {
  if (raw === undefined || raw === '' || raw === 'fast') return 'fast';
  if (raw === 'everything') return raw;
  throw new Error(`BENCH_PROFILE_UPSTREAM must be fast or everything, not ${raw}`);
}

/** The concurrency points of the event-stream section: 1 and 64 of BENCH_CONCURRENCY, or all of
 * it when it has neither. */
export function eventStreamConcurrency(): number[] {
  const ends = SETTINGS.concurrency.filter((c) => c === 1 || c === 64);
  return ends.length > 0 ? ends : [...SETTINGS.concurrency];
}

/** The proxy token the bench configures. */
export const PROXY_TOKEN = 'bench-proxy-token-0123456789abcdef';
/** The admin token the bench mints user tokens with (issue 17: static vs minted cost). */
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
/** The browser origin the bench's WebSocket clients claim (and the proxy allows). */
export const ORIGIN = 'http://bench.localhost';

/** The tools/call body every HTTP path carries (the proxy envelope wraps the same message). */
export const ECHO_CALL = {
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'echo', arguments: { message: 'bench' } },
} as const;

/** Sections that run only when named in BENCH_ONLY. */
const OPTIONAL = ['leakpaths', 'workers'];

/** True if the section should run. */
export function wanted(section: string): boolean {
  return SETTINGS.only.length === 0 ? !OPTIONAL.includes(section) : SETTINGS.only.includes(section);
}
