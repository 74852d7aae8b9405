import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { runFullFlow } from './helpers/flow.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);

describe('POST /proxy → configured stdio servers', () => {
  let proxy: RunningProxy;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-stdio-'));
    const configPath = join(dir, 'proxy.yaml');
    writeFileSync(
      configPath,
      [
        'servers:',
        '  everything:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(EVERYTHING)}, stdio]`,
        `    env: ${JSON.stringify(compileCacheEnv())}`,
        '  crashing:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: ["-e", "process.stdin.once('data', () => process.exit(3))"]`,
        '  missing:',
        '    command: /nonexistent/mcp-server',
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: configPath });
  });
  after(() => proxy?.close());

  it('carries a whole conversation with server-everything over stdio', async () => {
    const { sessionId } = await runFullFlow(proxy, { server: 'everything' });
    assert.match(sessionId, /^mcpp-/);
  });

  it('refuses an unknown server name with 404 unknown_server', async () => {
    const reply = await postProxy(proxy, { server: 'nope', jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(reply.status, 404);
    assert.equal(reply.body.error.data.code, 'unknown_server');
  });

  it('never runs a command named by a request', async () => {
    const reply = await postProxy(proxy, {
      mcp_server_url: 'stdio:///bin/sh',
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    });
    assert.equal(reply.status, 403);
    assert.equal(reply.body.error.data.reason, 'scheme_not_allowed');
  });

  it('reports a server that crashes mid-call as upstream_unreachable', async () => {
    const reply = await postProxy(proxy, { server: 'crashing', jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(reply.status, 502);
    assert.equal(reply.body.error.data.code, 'upstream_unreachable');
    assert.match(reply.body.error.message, /crashing/);
  });

  it('reports a command that cannot start', async () => {
    const reply = await postProxy(proxy, { server: 'missing', jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(reply.status, 502);
    assert.equal(reply.body.error.data.code, 'upstream_unreachable');
    assert.match(reply.body.error.message, /could not be started/);
  });
});
