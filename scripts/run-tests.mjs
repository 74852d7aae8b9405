#!/usr/bin/env node
/**
 * Runs one workspace's test files (`test/**\/*.test.ts` under the working directory), the longest
 * first (issue 15). `node --test` runs its files in name order, so a long file whose name sorts
 * late (workers.test.ts) started when the others were nearly done and ran alone at the end of the
 * run; started first, it overlaps the short ones instead. But the long files are the heavy ones
 * (child proxies, nginx, Chromium, conformance CLIs): all started at once on 2 cores, each took
 * twice as long and some missed their start-up deadlines. So no more than half the slots hold a
 * long file at a time; the order is planned as if each file took as long as it last did.
 *
 * How long each file takes comes from the last run on this machine (kept per workspace in
 * node_modules/.cache/mcp-proxy/test-durations/), else from scripts/test-durations.json, the
 * files that took longest in a run that was measured and committed. A file named in neither (a new
 * one) is taken to be as long as {@link UNKNOWN_SECONDS}. The order is all this changes: every
 * file runs, in a process of its own, as `node --test` would run it.
 *
 * Usage: node ../../scripts/run-tests.mjs --concurrency=4 [file...] (from a workspace's folder; files
 * named run instead of all, e.g. `npm test -w mcp-proxy-server -- test/cli.test.ts`).
 * Exits non-zero when a test failed.
 */
import { globSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** What a file named in no record is taken to last: after the long files, before the short. */
const UNKNOWN_SECONDS = 5;
/** A file that lasts this long counts as long: at most half the slots run one at a time. */
const LONG_SECONDS = 20;
/** How many of the slowest files the run names at its end. */
const SLOWEST_SHOWN = 10;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SEED = resolve(root, 'scripts/test-durations.json');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { concurrency: { type: 'string', default: '2' }, timeout: { type: 'string', default: '120000' } },
});
const workspace = JSON.parse(readFileSync('package.json', 'utf8')).name;
// One file per workspace: the server and the client suites run at once, each writing its own.
const LEARNED = resolve(root, 'node_modules/.cache/mcp-proxy/test-durations', `${workspace}.json`);

/** The JSON object in `path`, or an empty one when it cannot be read. */
function readRecord(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return {};
  }
}

const learned = readRecord(LEARNED);
const known = { ...readRecord(SEED)[workspace], ...learned };
const seconds = (file) => known[file] ?? UNKNOWN_SECONDS;
const concurrency = Number(values.concurrency);

/**
 * The files in the order they should start: plays the run through with `concurrency` slots, each
 * file lasting `seconds(file)`, and gives every slot that frees the longest file left, or the
 * longest short one while half the slots already hold long ones.
 */
function plan(files) {
  const pending = [...files].sort((a, b) => seconds(b) - seconds(a) || a.localeCompare(b));
  const running = [];
  const order = [];
  let now = 0;
  while (pending.length > 0) {
    if (running.length === concurrency) {
      running.sort((a, b) => a.ends - b.ends);
      now = running.shift().ends;
      continue;
    }
    const long = running.filter(({ file }) => seconds(file) >= LONG_SECONDS).length;
    const short = pending.findIndex((file) => seconds(file) < LONG_SECONDS);
    const [file] = pending.splice(long < concurrency / 2 || short === -1 ? 0 : short, 1);
    running.push({ file, ends: now + seconds(file) });
    order.push(file);
  }
  return order;
}

const files = plan(positionals.length > 0 ? positionals : globSync('test/**/*.test.ts'));

const took = {};
let passed = false;
const stream = run({
  files: files.map((file) => resolve(file)),
  concurrency,
  timeout: Number(values.timeout),
});
stream.on('test:complete', ({ file, nesting, name, details }) => {
  // A file's own entry: nesting 0, named for its path.
  if (file !== undefined && nesting === 0 && resolve(name) === file) {
    took[relative('.', file)] = Math.round(details.duration_ms / 100) / 10;
  }
});
stream.on('test:summary', ({ file, success }) => {
  // The whole run's summary is the one of no file.
  if (file === undefined) passed = success;
});
const report = stream.compose(spec);
report.pipe(process.stdout);
report.on('end', () => {
  const slowest = Object.entries(took)
    .sort(([, a], [, b]) => b - a)
    .slice(0, SLOWEST_SHOWN);
  process.stdout.write(`slowest files: ${slowest.map(([file, s]) => `${file} ${s} s`).join(', ')}\n`);
  mkdirSync(dirname(LEARNED), { recursive: true });
  writeFileSync(LEARNED, `${JSON.stringify({ ...learned, ...took })}\n`);
  if (!passed) process.exitCode = 1;
});
