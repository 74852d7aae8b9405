import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_REGISTRY } from '../src/errors.ts';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('docs/errors.md', () => {
  for (const [code, spec] of Object.entries(ERROR_REGISTRY)) {
    it(`documents ${code} with its HTTP status and JSON-RPC code`, () => {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` `));
      assert.ok(row, `a table row for ${code}`);
      const cells = row.split('|').map((c) => c.trim());
      assert.ok(cells[2]?.includes(String(spec.status)), `status ${spec.status} in "${cells[2]}"`);
      assert.equal(cells[3], String(spec.rpcCode));
    });
  }
});
