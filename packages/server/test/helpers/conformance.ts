/**
 * Runs the `@modelcontextprotocol/conformance` server scenarios against an MCP endpoint and reports
 * the outcome per scenario, read from the `checks.json` the CLI writes for each scenario.
 *
 * Two CLIs are installed: `stable` (`@modelcontextprotocol/conformance` 0.1.16, the 2025
 * scenarios) and `alpha` (0.2.0-alpha.12 under the npm alias `conformance-2026`, which adds the
 * 2026-07-28 scenarios and `--requirements`). Every function takes the CLI to use; `stable` is
 * the default.
 *
 * A scenario passes only when its checks include at least one SUCCESS and no FAILURE or WARNING
 * (the CLI's own summary ignores warnings; its `--expected-failures` baseline does not, and neither
 * do we; SKIPPED and INFO checks neither pass nor fail one). A scenario that left no
 * `checks.json` (crash, timeout, CLI error) counts as failed.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** Which installed conformance CLI runs: 0.1.16 (`stable`) or 0.2.0-alpha.12 (`alpha`). */
export type ConformanceCli = 'stable' | 'alpha';

/** What {@link runConformance} runs; every field has a default in {@link DEFAULTS}. */
export interface ConformanceOptions {
  /** The CLI; default `stable`. */
  readonly cli?: ConformanceCli;
  /**
   * Runs exactly what this spec revision requires, plus the scenarios it runs but does not score,
   * in one invocation (`--requirements`, `alpha` only). Excludes `scenarios`.
   */
  readonly requirements?: string;
  /**
   * Scenarios to run, each in its own CLI invocation; default (without `requirements`): every
   * server scenario, in one (`--suite all`).
   */
  readonly scenarios?: string[];
  /** `--spec-version` for runs by scenario: the wire version the scenarios speak. */
  readonly specVersion?: string;
  /** `--timeout`: how long one scenario may take (the CLI's default is 30 s). */
  readonly scenarioTimeoutMs?: number;
  /** Budget for the whole run; scenarios not finished by then count as failed. */
  readonly timeoutMs?: number;
  /**
   * The CLI's server scenarios when the caller listed them already ({@link listServerScenarios}):
   * a run of the whole suite then starts the CLI once, not twice.
   */
  readonly listed?: readonly string[];
}

/** The server scenarios a spec revision requires, per the CLI's frozen `requirements/<rev>.yaml`. */
export interface RequiredScenarios {
  /** Scored: conformance to the revision means passing all of these. */
  readonly required: string[];
  /** Run and reported by `--requirements`, never scored, each with the file's reason. */
  readonly notScored: { readonly scenario: string; readonly reason: string }[];
}

/** One failed scenario and why, in a line per failing check. */
export interface ConformanceFailure {
  readonly scenario: string;
  readonly detail: string;
}

/** Outcome of {@link runConformance}: every scenario lands in exactly one of the two lists. */
export interface ConformanceResult {
  readonly passed: string[];
  readonly failed: ConformanceFailure[];
  /** The CLI's combined stdout and stderr, colour codes stripped. */
  readonly raw: string;
}

const DEFAULTS = {
  timeoutMs: 120_000,
  /** Grace between SIGTERM and SIGKILL when the budget runs out. */
  killGraceMs: 2_000,
  /** Output kept per invocation; a full verbose run is well under 1 MiB. */
  maxOutputBytes: 4 * 1024 * 1024,
} as const;

const require = createRequire(import.meta.url);
/** Installed package folder per CLI (the alpha lives under an npm alias). */
const PACKAGE_DIRS: Record<ConformanceCli, string> = {
  stable: dirname(require.resolve('@modelcontextprotocol/conformance/package.json')),
  alpha: dirname(require.resolve('conformance-2026/package.json')),
};

// The CLI names result folders `server-<scenario>-<ISO time with ':' and '.' as '-'>`.
const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI colour escapes is the point.
const ANSI = /\x1B\[[0-9;]*m/g;

/** Server scenario names known to a conformance CLI (`conformance list --server`). */
export async function listServerScenarios(
  options: { readonly cli?: ConformanceCli; readonly timeoutMs?: number } = {},
): Promise<string[]> {
  const cwd = await mkdtemp(join(tmpdir(), 'mcp-conformance-list-'));
  try {
    const run = await runCli(options.cli ?? 'stable', ['list', '--server'], cwd, options.timeoutMs ?? 30_000);
    const names = [...run.output.matchAll(/^\s+- (\S+)/gm)].map((match) => match[1] ?? '');
    if (run.exitCode !== 0 || names.length === 0) {
      throw new Error(`conformance list --server failed (exit ${run.exitCode}):\n${run.output}`);
    }
    return names;
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

/**
 * The server scenarios `revision` requires and those `--requirements` runs without scoring, read
 * from the requirements file the CLI ships (`requirements/<revision>.yaml`, `alpha` only).
 */
export async function requiredServerScenarios(
  revision: string,
  cli: ConformanceCli = 'alpha',
): Promise<RequiredScenarios> {
  const text = await readFile(join(PACKAGE_DIRS[cli], 'requirements', `${revision}.yaml`), 'utf8');
  const file = parseYaml(text) as {
    server?: unknown;
    not_scored?: { scenario?: unknown; leg?: unknown; reason?: unknown }[];
  };
  const required = Array.isArray(file.server) ? file.server.map(String) : [];
  const notScored = (file.not_scored ?? [])
    .filter((entry) => entry.leg === 'server' && typeof entry.scenario === 'string')
    .map((entry) => ({ scenario: String(entry.scenario), reason: String(entry.reason ?? 'not scored') }));
  if (required.length === 0) throw new Error(`no server scenarios in ${revision}.yaml of the ${cli} CLI`);
  return { required, notScored };
}

/**
 * Runs the conformance server scenarios against `url` (a Streamable HTTP endpoint) with the CLI
 * under this Node (it needs ≥ 22), in a temporary directory that is removed afterwards.
 */
export async function runConformance(
  url: string,
  options: ConformanceOptions = {},
): Promise<ConformanceResult> {
  const cli = options.cli ?? 'stable';
  if (options.requirements !== undefined && options.scenarios !== undefined) {
    throw new Error('runConformance: `requirements` and `scenarios` exclude each other');
  }
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULTS.timeoutMs);
  const budget = () => Math.max(1, deadline - Date.now());
  let expected: string[];
  if (options.scenarios !== undefined) expected = options.scenarios;
  else if (options.requirements !== undefined) {
    const { required, notScored } = await requiredServerScenarios(options.requirements, cli);
    expected = [...required, ...notScored.map((entry) => entry.scenario)];
  } else
    expected = options.listed ? [...options.listed] : await listServerScenarios({ cli, timeoutMs: budget() });
  const cwd = await mkdtemp(join(tmpdir(), 'mcp-conformance-'));
  const resultsDir = join(cwd, 'results');
  const outputs: string[] = [];
  // Why a scenario may have left no checks.json, per scenario, from its invocation.
  const reasons = new Map<string, string>();
  const common = [
    ...(options.scenarioTimeoutMs === undefined ? [] : ['--timeout', String(options.scenarioTimeoutMs)]),
    '-o',
    resultsDir,
  ];
  try {
    let invocations: { scenarios: string[]; args: string[] }[];
    if (options.requirements !== undefined) {
      invocations = [{ scenarios: expected, args: ['--requirements', options.requirements] }];
    } else if (options.scenarios === undefined) {
      invocations = [{ scenarios: expected, args: ['--suite', 'all'] }];
    } else {
      const version = options.specVersion === undefined ? [] : ['--spec-version', options.specVersion];
      invocations = expected.map((scenario) => ({
        scenarios: [scenario],
        args: ['--scenario', scenario, ...version],
      }));
    }
    for (const invocation of invocations) {
      const left = deadline - Date.now();
      if (left <= 0) {
        for (const scenario of invocation.scenarios) reasons.set(scenario, 'time budget exhausted');
        continue;
      }
      const run = await runCli(cli, ['server', '--url', url, ...invocation.args, ...common], cwd, left);
      outputs.push(run.output);
      const why = run.timedOut ? 'timed out' : `CLI exited with ${run.exitCode}`;
      // A lone scenario's output is all about it, so it says why it left no results.
      const said = invocation.scenarios.length === 1 ? `: ${explain(run.output)}` : '';
      for (const scenario of invocation.scenarios) reasons.set(scenario, `${why}${said}`);
    }

    const { verdicts, unfinished } = await readVerdicts(resultsDir);
    const raw = outputs.join('\n');
    const passed: string[] = [];
    const failed: ConformanceFailure[] = [];
    for (const scenario of new Set([...expected, ...verdicts.keys()])) {
      const verdict = verdicts.get(scenario);
      if (verdict === undefined) {
        const what = unfinished.has(scenario) ? 'started but did not finish' : 'did not run';
        const detail = `${what} (${reasons.get(scenario) ?? 'no reason given'})`;
        failed.push({ scenario, detail: withCliError(detail, scenario, raw) });
      } else if (verdict.ok) {
        passed.push(scenario);
      } else {
        failed.push({ scenario, detail: verdict.detail });
      }
    }
    return { passed, failed, raw };
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

type Verdict = { ok: true } | { ok: false; detail: string };

interface Check {
  readonly id?: unknown;
  readonly status?: unknown;
  readonly description?: unknown;
  readonly errorMessage?: unknown;
}

/**
 * Reads every `results/server-<scenario>-<time>/checks.json` into a verdict per scenario. The CLI
 * creates the folder before a scenario runs and writes checks.json after, so a folder without it
 * is a scenario that started and never finished.
 */
async function readVerdicts(
  resultsDir: string,
): Promise<{ verdicts: Map<string, Verdict>; unfinished: Set<string> }> {
  const verdicts = new Map<string, Verdict>();
  const unfinished = new Set<string>();
  let entries: string[];
  try {
    entries = await readdir(resultsDir);
  } catch {
    return { verdicts, unfinished };
  }
  for (const entry of entries.sort()) {
    const scenario = RESULT_DIR.exec(entry)?.[1];
    if (scenario === undefined) continue;
    let text: string;
    try {
      text = await readFile(join(resultsDir, entry, 'checks.json'), 'utf8');
    } catch {
      unfinished.add(scenario);
      continue;
    }
    let verdict: Verdict;
    try {
      verdict = judge(JSON.parse(text));
    } catch (error) {
      verdict = { ok: false, detail: `unreadable checks.json: ${(error as Error).message}` };
    }
    const previous = verdicts.get(scenario);
    // Should a scenario ever report twice, one bad report fails it.
    verdicts.set(scenario, previous !== undefined && !previous.ok ? previous : verdict);
  }
  return { verdicts, unfinished };
}

function judge(checks: unknown): Verdict {
  if (!Array.isArray(checks) || checks.length === 0) return { ok: false, detail: 'no checks recorded' };
  const list = checks as Check[];
  const bad = list.filter((check) => check.status === 'FAILURE' || check.status === 'WARNING');
  if (bad.length > 0) {
    const lines = bad.map(
      (check) =>
        `${String(check.status)} ${String(check.id)}: ${String(check.errorMessage ?? check.description)}`,
    );
    return { ok: false, detail: lines.join('\n') };
  }
  if (!list.some((check) => check.status === 'SUCCESS')) {
    // Only INFO checks: the scenario bailed out before testing anything (e.g. JSON instead of SSE).
    const info = list.map((check) => `${String(check.status)} ${String(check.id)}`).join(', ');
    return { ok: false, detail: `no successful check (${info})` };
  }
  return { ok: true };
}

/** Appends what the CLI printed about a scenario it could not run, if anything. */
function withCliError(note: string, scenario: string, raw: string): string {
  const lines = raw.split('\n');
  const at = lines.findIndex((line) => line.includes(`Failed to run scenario ${scenario}`));
  return at === -1
    ? note
    : `${note}: ${lines
        .slice(at, at + 3)
        .join(' ')
        .trim()}`;
}

/** The CLI's first error line and the one after it, else its last two lines. */
function explain(output: string): string {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const at = lines.findIndex((line) => /error/i.test(line));
  return (at === -1 ? lines.slice(-2) : lines.slice(at, at + 2)).join(' / ');
}

interface CliRun {
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly output: string;
}

/** Runs a CLI with this Node; kills it when `timeoutMs` runs out. */
function runCli(cli: ConformanceCli, args: string[], cwd: string, timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PACKAGE_DIRS[cli], 'dist/index.js'), ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      if (output.length < DEFAULTS.maxOutputBytes) output += chunk.toString('utf8');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), DEFAULTS.killGraceMs);
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      clearTimeout(killer);
      reject(error);
    });
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      clearTimeout(killer);
      resolve({ exitCode, timedOut, output: output.replace(ANSI, '') });
    });
  });
}
