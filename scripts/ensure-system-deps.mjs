#!/usr/bin/env node
/**
 * Makes sure the Debian programs the tests (and the bench) need are installed: by default
 * Chromium (real-browser tests), redis-server (shared state) and nginx (the multi-instance tests
 * balance over it); pass names to check others (`node scripts/ensure-system-deps.mjs nginx wrk`).
 *
 * A missing program is installed with apt-get when we run as root on a Debian-like system (CI
 * on a fresh machine); otherwise the script fails with one line saying what to do. It never
 * downloads a browser build of its own (no `playwright install`).
 *
 * CHROMIUM_PATH overrides the browser binary (the browser tests read the same variable).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

/** Program name → [binary path, Debian package]. */
const KNOWN = {
  chromium: [process.env.CHROMIUM_PATH || '/usr/bin/chromium', 'chromium'],
  'redis-server': ['/usr/bin/redis-server', 'redis-server'],
  nginx: ['/usr/sbin/nginx', 'nginx'],
  wrk: ['/usr/bin/wrk', 'wrk'],
};

function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(command, args) {
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status}`);
}

const wanted = process.argv.length > 2 ? process.argv.slice(2) : ['chromium', 'redis-server', 'nginx'];
const unknown = wanted.filter((name) => !(name in KNOWN));
if (unknown.length > 0) {
  console.error(
    `ensure-system-deps: unknown program(s) ${unknown.join(', ')}; known: ${Object.keys(KNOWN).join(', ')}`,
  );
  process.exit(2);
}
const missing = wanted.filter((name) => !executable(KNOWN[name][0]));
if (missing.length === 0) process.exit(0);

if (missing.includes('chromium') && process.env.CHROMIUM_PATH) {
  console.error(`ensure-system-deps: CHROMIUM_PATH=${process.env.CHROMIUM_PATH} is not an executable file.`);
  process.exit(1);
}
const packages = missing.map((name) => KNOWN[name][1]);
const manual = `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages.join(' ')}`;
if (process.platform !== 'linux' || !executable('/usr/bin/apt-get')) {
  console.error(
    `ensure-system-deps: missing ${missing.join(', ')} and this is not a Debian-like system: install them yourself.`,
  );
  process.exit(1);
}
if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
  console.error(`ensure-system-deps: missing ${missing.join(', ')}. Install with "${manual}".`);
  process.exit(1);
}

console.error(`ensure-system-deps: installing ${packages.join(', ')} with apt-get…`);
try {
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', '--no-install-recommends', ...packages]);
} catch (error) {
  console.error(`ensure-system-deps: could not install ${packages.join(', ')}: ${error.message}`);
  process.exit(1);
}
const still = missing.filter((name) => !executable(KNOWN[name][0]));
if (still.length > 0) {
  console.error(`ensure-system-deps: apt-get finished but ${still.join(', ')} is still missing.`);
  process.exit(1);
}
console.error(`ensure-system-deps: ${missing.join(', ')} ready.`);
