/**
 * Builds dist/: ESM JavaScript and .d.ts with tsc, then points the relative specifiers of the
 * .d.ts files at `.js` (tsc rewrites them in the JavaScript only), so every TypeScript version
 * and resolution mode a consumer may use reads them; last, the one-file browser bundle the proxy
 * serves at /client/mcp-proxy-client.js. Runs as `prepare`, so `npm ci` at the root and
 * `npm pack` leave a built package.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForBrowser, SERVED_BUNDLE_NAME, SERVED_ENTRY } from './bundle.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

let rewritten = 0;
for (const entry of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
  if (!entry.endsWith('.d.ts')) continue;
  const file = join(dist, entry);
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(/(from\s+['"]\.{1,2}\/[^'"]*?)\.ts(['"])/g, '$1.js$2');
  if (fixed !== text) {
    writeFileSync(file, fixed);
    rewritten++;
  }
}
const bundle = await bundleForBrowser(SERVED_ENTRY);
writeFileSync(join(dist, SERVED_BUNDLE_NAME), bundle.code);
console.log(
  `built ${dist} (${rewritten} declaration files re-pointed at .js; ${SERVED_BUNDLE_NAME}: ` +
    `${bundle.bytes} bytes, ${bundle.gzipBytes} gzipped)`,
);
