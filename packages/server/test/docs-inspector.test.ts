/**
 * Issue #14.19: an unpinned `npx @modelcontextprotocol/inspector` resolves an old Inspector on
 * Node < 22.19 (npx picks the newest version whose `engines` fit), whose flags differ. Every
 * `npx` Inspector command in the README and docs names an exact version, and the README says which
 * Node the pinned CLI needs.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FILES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

describe('MCP Inspector commands in the docs', () => {
  it('pin an exact Inspector version', () => {
    const unpinned: string[] = [];
    for (const file of FILES) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const match of text.matchAll(/\bnpx\s+(?:-y\s+)?@modelcontextprotocol\/inspector(@\S*)?/g)) {
        if (!/^@\d+\.\d+\.\d+$/.test((match[1] ?? '').replace(/[`),]+$/, '')))
          unpinned.push(`${file}: ${match[0]}`);
      }
    }
    assert.deepEqual(unpinned, []);
  });

  it('the README names the Node version the pinned CLI needs', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.match(readme, /Inspector 2\.x needs Node 22\.19 or newer/);
  });
});
