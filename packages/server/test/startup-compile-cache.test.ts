/**
 * Issue #16 (start-up memory): the proxy serves from a process whose environment names Node's
 * compile cache, so not even its entry file needs the type stripper; it is the process that was
 * started (same pid, the flags it was given), and an operator's own NODE_COMPILE_CACHE is kept.
 * Its young generation has a floor (`--min-semi-space-size`, startup-memory.ts) unless the
 * operator sized it.
 * `node bench/startup-rss.ts` measures what this saves. Reads /proc: Linux only.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startChildProxy } from './helpers/child-proxy.ts';

const CACHE = fileURLToPath(new URL('../../../node_modules/.cache/mcp-proxy/compile', import.meta.url));
const linux = process.platform === 'linux';

/** The NUL-separated entries of a /proc file of the process. */
function procList(pid: number | undefined, file: 'environ' | 'cmdline'): string[] {
  assert.ok(pid !== undefined);
  return readFileSync(`/proc/${pid}/${file}`, 'latin1').split('\0');
}

describe('start-up compile cache', { skip: !linux && 'reads /proc' }, () => {
  it('serves from the started process, its flags kept, with the cache named in its environment', async () => {
    const proxy = await startChildProxy({}, 96);
    try {
      const health = await fetch(`${proxy.url}/health`);
      assert.equal(health.status, 200);
      const environ = procList(proxy.child.pid, 'environ');
      assert.ok(environ.includes(`NODE_COMPILE_CACHE=${CACHE}`), `environment: ${environ.join(' ')}`);
      const cmdline = procList(proxy.child.pid, 'cmdline');
      assert.ok(cmdline.includes('--max-old-space-size=96'), `command line: ${cmdline.join(' ')}`);
      assert.ok(cmdline.includes('--min-semi-space-size=8'), `command line: ${cmdline.join(' ')}`);
    } finally {
      await proxy.stop();
    }
  });

  it('keeps the compile cache an operator names', async () => {
    const own = mkdtempSync(join(tmpdir(), 'compile-cache-'));
    after(() => rmSync(own, { recursive: true, force: true }));
    const proxy = await startChildProxy({ NODE_COMPILE_CACHE: own }, 96);
    try {
      assert.equal((await fetch(`${proxy.url}/health`)).status, 200);
      const environ = procList(proxy.child.pid, 'environ').filter((entry) =>
        entry.startsWith('NODE_COMPILE_CACHE='),
      );
      assert.deepEqual(environ, [`NODE_COMPILE_CACHE=${own}`]);
      assert.ok(procList(proxy.child.pid, 'cmdline').includes('--min-semi-space-size=8'));
    } finally {
      await proxy.stop();
    }
  });

  it("keeps the operator's own young-generation size", async () => {
    const proxy = await startChildProxy({}, 96, undefined, ['--max-semi-space-size=2']);
    try {
      assert.equal((await fetch(`${proxy.url}/health`)).status, 200);
      const cmdline = procList(proxy.child.pid, 'cmdline');
      assert.ok(cmdline.includes('--max-semi-space-size=2'), `command line: ${cmdline.join(' ')}`);
      assert.ok(
        !cmdline.some((arg) => arg.startsWith('--min-semi-space-size')),
        `command line: ${cmdline.join(' ')}`,
      );
    } finally {
      await proxy.stop();
    }
  });
});
