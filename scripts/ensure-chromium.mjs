#!/usr/bin/env node
/**
 * Makes sure Debian's Chromium is installed for the client's real-browser tests.
 *
 * If the browser is missing and we run as root (CI on a fresh machine), installs Debian's
 * `chromium` package non-interactively with apt-get. Otherwise fails with one line saying what
 * to do. Never downloads a browser build of its own (no `playwright install`).
 *
 * Override the binary with CHROMIUM_PATH (the browser test reads the same variable).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const path = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

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
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status}`);
}

if (executable(path)) process.exit(0);

if (process.env.CHROMIUM_PATH) {
  console.error(`ensure-chromium: CHROMIUM_PATH=${path} is not an executable file.`);
  process.exit(1);
}
if (process.platform !== 'linux' || !executable('/usr/bin/apt-get')) {
  console.error(
    `ensure-chromium: ${path} is missing and this is not a Debian-like system: install Chromium ` +
      'and set CHROMIUM_PATH to its binary.',
  );
  process.exit(1);
}
if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
  console.error(
    `ensure-chromium: ${path} is missing. Install it with ` +
      '"sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium", ' +
      'or set CHROMIUM_PATH to another Chromium binary.',
  );
  process.exit(1);
}

console.error('ensure-chromium: installing Debian chromium (apt-get) for the browser tests…');
try {
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', '--no-install-recommends', 'chromium']);
} catch (error) {
  console.error(`ensure-chromium: could not install chromium: ${error.message}`);
  process.exit(1);
}
if (!executable(path)) {
  console.error(`ensure-chromium: apt-get finished but ${path} is still missing.`);
  process.exit(1);
}
console.error(`ensure-chromium: ${path} is ready.`);
