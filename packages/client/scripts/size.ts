/**
 * Prints the min+gzip size of the browser bundle: importing only `MCPProxyClient` (the figure
 * the 15 kB budget is about), and importing everything. A figure, not a test; the budget itself
 * is asserted in test/package.test.ts.
 */
import { bundleForBrowser, CLASS_ONLY_ENTRY, EVERYTHING_ENTRY } from './bundle.ts';

const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} kB`;
for (const [label, entry] of [
  ['import { MCPProxyClient }', CLASS_ONLY_ENTRY],
  ['import * (everything)', EVERYTHING_ENTRY],
] as const) {
  const { bytes, gzipBytes } = await bundleForBrowser(entry);
  console.log(`${label.padEnd(28)} ${kb(bytes).padStart(9)} min  ${kb(gzipBytes).padStart(9)} min+gzip`);
}
