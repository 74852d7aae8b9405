/**
 * Review 6 (virtual servers), finding 2: slow members stall a list one after the other. A list
 * page asks its members in turn and waits up to `listTimeoutMs` for each before it moves on, so
 * with k members that do not answer `tools/list` the first page (with the healthy member's
 * tools) takes k x `listTimeoutMs`, and a `search_tools` — documented to start no page after
 * 3 x `listTimeoutMs` — takes as long, since one "page" walks every slow member. Twelve slow
 * members at the default 5 s hold every list past a client's 60 s request timeout: the healthy
 * members can no longer be listed at all.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);
/** Answers initialize, holds tools/list for ever. */
const HELD_STDIO = fileURLToPath(new URL('./fixtures/held-stdio.ts', import.meta.url));
const SLOW = ['slow1', 'slow2', 'slow3', 'slow4', 'slow5', 'slow6'];
const LIST_TIMEOUT_MS = 1_000;

describe('review6 virtual 2: slow members do not add up', () => {
  let proxy: RunningProxy;
  let dir: string;
  let id = 1;
  const call = (server: string, method: string, params: Record<string, unknown>) =>
    postProxy({ url: proxy.url, token: TEST_TOKEN }, { server, jsonrpc: '2.0', id: id++, method, params });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-review6-virtual-2-'));
    const held = { command: process.execPath, args: [HELD_STDIO, dir], env: compileCacheEnv() };
    const members = [...SLOW, 'everything'];
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: {
          ...Object.fromEntries(SLOW.map((name) => [name, held])),
          everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: compileCacheEnv() },
        },
        virtualServers: {
          workspace: { servers: members, listTimeoutMs: LIST_TIMEOUT_MS },
          searchable: { servers: members, listTimeoutMs: LIST_TIMEOUT_MS, toolSearch: true },
        },
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: join(dir, 'proxy.json') });
    // Every member opened (held-stdio answers initialize at once, everything once it has
    // started): what is timed below is the lists. The slow members are then remembered as slow
    // for this principal in `workspace` (the first test), not yet in `searchable` (the second:
    // they are asked again, together).
    await eventually(
      async () => {
        const list = await call('workspace', 'tools/list', {});
        const tools = (list.body.result?.tools ?? []) as Array<{ name: string }>;
        return tools.some((tool) => tool.name.startsWith('everything__'));
      },
      { timeoutMs: 60_000, what: 'the everything member to be listed' },
    );
  });
  after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the healthy member’s page within about one list deadline, not one per slow member', async () => {
    const started = performance.now();
    const list = await call('workspace', 'tools/list', {});
    const took = performance.now() - started;
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const names = (list.body.result.tools as Array<{ name: string }>).map((tool) => tool.name);
    assert.ok(
      names.some((name) => name.startsWith('everything__')),
      names.join(','),
    );
    // Six slow members asked in turn cost >= 6 s; asked together, about 1 s.
    assert.ok(took < 3 * LIST_TIMEOUT_MS, `the first page took ${Math.round(took)} ms`);
  });

  it('search_tools keeps its documented bound of 3 list deadlines', async () => {
    const started = performance.now();
    const found = await call('searchable', 'tools/call', {
      name: 'search_tools',
      arguments: { query: 'echo' },
    });
    const took = performance.now() - started;
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.match(found.body.result.content[0].text, /everything__echo/);
    assert.ok(took < 3 * LIST_TIMEOUT_MS + 1_000, `the search took ${Math.round(took)} ms`);
  });
});
