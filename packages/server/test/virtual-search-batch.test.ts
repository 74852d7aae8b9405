/**
 * Review 6 (virtual servers), finding 7: a batch of `search_tools` calls ran them one after the
 * other, each reading up to 20 list pages, for a single HTTP request. One search runs per
 * request; the others in the batch are answered `search_limit`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);

describe('review6 virtual 7: one search per request', () => {
  let proxy: RunningProxy;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-search-batch-'));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: {
          everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: compileCacheEnv() },
        },
        virtualServers: { searchable: { servers: ['everything'], toolSearch: true, listTimeoutMs: 20_000 } },
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: join(dir, 'proxy.json') });
  });
  after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the first search_tools of a batch and answers the others search_limit', async () => {
    const search = (id: number) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'search_tools', arguments: { query: 'echo' } },
    });
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
      authorization: `Bearer ${TEST_TOKEN}`,
    };
    // A 2025-era client initializes first and sends its session id on.
    const initialized = await fetch(`${proxy.url}/servers/searchable/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    const session = initialized.headers.get('mcp-session-id');
    assert.ok(session);
    const response = await fetch(`${proxy.url}/servers/searchable/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': session },
      body: JSON.stringify([search(1), search(2), search(3)]),
    });
    assert.equal(response.status, 200);
    const answers = (await response.json()) as Array<{
      id: number;
      result?: { content: Array<{ text: string }> };
      error?: { code: number; data?: { code?: string } };
    }>;
    assert.deepEqual(
      answers.map((answer) => answer.id),
      [1, 2, 3],
    );
    assert.match(answers[0]?.result?.content[0]?.text ?? '', /everything__echo/, JSON.stringify(answers[0]));
    for (const refused of answers.slice(1)) {
      assert.equal(refused.error?.code, -33275, JSON.stringify(refused));
      assert.equal(refused.error?.data?.code, 'search_limit');
    }
  });
});
