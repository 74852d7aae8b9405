/**
 * Issue #16 (start-up memory): the optimizing compilers are held back while the proxy loads and
 * are back once it serves, so hot code is optimized as before; flags an operator gave are kept.
 * Each case runs in a fresh child (V8 flags are the process's) that reads V8's own view of a hot
 * function (`%GetOptimizationStatus`, bit 16: optimized).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const MODULE = new URL('../src/startup-memory.ts', import.meta.url).href;
const OPTIMIZED = 16;

/** Whether a function called hot is optimized: while held back, and after the release. */
async function optimizedWhen(flags: string[] = []): Promise<{ held: boolean; released: boolean }> {
  const script = `
    const { holdOptimizersBack } = await import(${JSON.stringify(MODULE)});
    const release = holdOptimizersBack();
    const status = (f) => { const values = Array.from({ length: 200 }, (_, i) => i); for (let i = 0; i < 20000; i++) f(values); return (%GetOptimizationStatus(f) & ${OPTIMIZED}) !== 0; };
    const held = status((a) => { let s = 0; for (const v of a) s += v * 3; return s; });
    release();
    const released = status((a) => { let s = 0; for (const v of a) s += v * 5; return s; });
    process.stdout.write(JSON.stringify({ held, released }));
  `;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--allow-natives-syntax', ...flags, '--input-type=module', '-e', script],
    { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
  );
  return JSON.parse(stdout) as { held: boolean; released: boolean };
}

describe('start-up memory: the optimizing compilers', () => {
  it('optimize nothing while held back, and hot code again once released', async () => {
    assert.deepEqual(await optimizedWhen(), { held: false, released: true });
  });

  it("are left as the operator's flags set them", async () => {
    assert.deepEqual(await optimizedWhen(['--no-turbofan', '--no-maglev']), { held: false, released: false });
  });
});
