/**
 * Review 6 (virtual servers), finding 3: a member grant fails open. A token granted
 * `servers: [workspace, a]` sees only member `a` inside `workspace` — until `a` is no longer a
 * member (a reload drops it, or it is renamed): its grant then names no member, and
 * `visibleMembers` (virtual/member-view.ts) falls back to *every* member, so the token that
 * was held to `a` now lists and calls `b`, which no grant ever gave it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);
const ONLY_A = 'review6-virtual-only-a-token-0123456789';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('review6 virtual 3: a grant held to one member does not widen when it leaves', () => {
  let proxy: RunningProxy;
  let dir: string;
  let configPath: string;
  let id = 1;
  const env = () => ({ MCP_PROXY_CONFIG: configPath });
  const writeConfig = (members: string[]) =>
    writeFileSync(
      configPath,
      JSON.stringify({
        servers: {
          a: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: compileCacheEnv() },
          b: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: compileCacheEnv() },
        },
        virtualServers: { workspace: { servers: members } },
        tokens: [{ sha256: sha256(ONLY_A), servers: ['workspace', 'a'] }],
      }),
    );
  const call = (name: string) =>
    postProxy(
      { url: proxy.url, token: ONLY_A },
      {
        server: 'workspace',
        jsonrpc: '2.0',
        id: id++,
        method: 'tools/call',
        params: { name, arguments: { message: 'hi' } },
      },
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-review6-virtual-3-'));
    configPath = join(dir, 'proxy.json');
    writeConfig(['a', 'b']);
    proxy = await startProxy(env());
  });
  after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps member b hidden from a token granted only a, before and after a reload drops a', async () => {
    const before = await call('b__echo');
    assert.match(before.body.error?.message ?? '', /Unknown tool: b__echo/, JSON.stringify(before.body));
    writeConfig(['b']);
    proxy.app.reload(loadConfig({ env: env() }));
    const after = await call('b__echo');
    assert.match(after.body.error?.message ?? '', /Unknown tool: b__echo/, JSON.stringify(after.body));
  });
});
