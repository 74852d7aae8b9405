/**
 * Launches Debian's Chromium (installed by scripts/ensure-system-deps.mjs, never downloaded by
 * Playwright) headless through playwright-core.
 */
import { accessSync, constants } from 'node:fs';
import { type Browser, chromium, type LaunchOptions } from 'playwright-core';

/** The browser binary: CHROMIUM_PATH or Debian's. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Launches headless Chromium with a fresh profile; fails clearly when it is not installed.
 * `options` go over the defaults (e.g. `ignoreDefaultArgs: ['--disable-popup-blocking']` to keep
 * the browser's popup blocker, which Playwright turns off).
 */
export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
  } catch {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: run "node scripts/ensure-system-deps.mjs" (as root it installs ` +
        "Debian's chromium) or set CHROMIUM_PATH.",
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    ...options,
  });
}
