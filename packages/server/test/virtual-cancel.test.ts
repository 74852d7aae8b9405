/**
 * Review 6 (virtual servers), finding 6: a virtual server's cancellations are keyed by principal,
 * virtual server and request id, and its endpoint holds no session: two tabs of one principal
 * that use the same id must not cancel each other's request, nor must the later one take the
 * earlier's place (its cancellation then reached the wrong one, or none).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);

describe('review6 virtual 6: one tab cancelling does not cancel another tab’s request', () => {
  let proxy: RunningProxy;
  let dir: string;
  const post = (body: Record<string, unknown>) =>
    postProxy({ url: proxy.url, token: TEST_TOKEN }, { server: 'workspace', jsonrpc: '2.0', ...body });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-cancel-'));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: {
          everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: compileCacheEnv() },
        },
        virtualServers: { workspace: { servers: ['everything'] } },
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: join(dir, 'proxy.json') });
    // The member's session is open before the calls below.
    const echo = await post({
      id: 0,
      method: 'tools/call',
      params: { name: 'everything__echo', arguments: { message: 'x' } },
    });
    assert.ok(echo.body.result, JSON.stringify(echo.body));
  });
  after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves both of two same-id calls running when that id is cancelled', async () => {
    const long = () =>
      post({
        id: 7,
        method: 'tools/call',
        params: { name: 'everything__trigger-long-running-operation', arguments: { duration: 2, steps: 2 } },
      });
    const first = long();
    const second = long();
    // Both are under way once the member answers a request sent after them.
    const echo = await post({
      id: 8,
      method: 'tools/call',
      params: { name: 'everything__echo', arguments: { message: 'y' } },
    });
    assert.ok(echo.body.result, JSON.stringify(echo.body));
    // Which tab sent it cannot be told (no session): it must cancel neither, rather than the other's.
    const cancel = await post({
      method: 'notifications/cancelled',
      params: { requestId: 7, reason: 'tab A' },
    });
    assert.equal(cancel.status, 202);
    for (const answer of await Promise.all([first, second]))
      assert.match(
        JSON.stringify(answer.body),
        /Long running operation completed/,
        JSON.stringify(answer.body),
      );
  });

  it('still cancels a lone request by its id', async () => {
    const lone = post({
      id: 9,
      method: 'tools/call',
      params: { name: 'everything__trigger-long-running-operation', arguments: { duration: 5, steps: 5 } },
    });
    const echo = await post({
      id: 10,
      method: 'tools/call',
      params: { name: 'everything__echo', arguments: { message: 'z' } },
    });
    assert.ok(echo.body.result, JSON.stringify(echo.body));
    await post({ method: 'notifications/cancelled', params: { requestId: 9 } });
    assert.doesNotMatch(JSON.stringify((await lone).body), /Long running operation completed/);
  });
});
