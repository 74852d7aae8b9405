/**
 * Issue 20: a member that speaks only MCP 2026-07-28 (an SDK v2 server, no `initialize`) behind a
 * virtual server that a 2025 client uses: the proxy's own handshake with the member goes through
 * the era bridge, so its tools, prompts and resources merge like any other member's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GREETING_TEXT, type ModernServer, startModernServer } from './fixtures/modern-server.ts';
import { type ConnectedClient, connectClient, serverTarget } from './helpers/mcp-client.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

describe('a modern-only member of a virtual server', () => {
  let upstream: ModernServer;
  let proxy: RunningProxy;
  let client: ConnectedClient | undefined;
  let dir: string;

  before(async () => {
    upstream = await startModernServer();
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-modern-'));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: { modern: { url: upstream.url, transport: 'streamable-http' } },
        virtualServers: { workspace: { servers: ['modern'], separator: '.' } },
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: join(dir, 'proxy.json') });
  });
  after(async () => {
    await client?.close();
    await proxy?.close();
    await upstream?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists, calls and reads through the era bridge for a 2025 client', async () => {
    client = await connectClient(proxy, serverTarget('workspace'), { roots: false });
    const { tools } = await client.client.listTools();
    assert.ok(
      tools.some((tool) => tool.name === 'modern.echo'),
      tools.map((tool) => tool.name).join(', '),
    );
    const echo = await client.client.callTool({ name: 'modern.echo', arguments: { message: 'hi' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'Echo: hi' }]);
    const read = await client.client.readResource({ uri: 'mcpp://modern/modern://greeting' });
    assert.equal((read.contents[0] as { text?: string }).text, GREETING_TEXT);
    const { prompts } = await client.client.listPrompts();
    assert.ok(prompts.some((prompt) => prompt.name === 'modern.greet'));
  });
});
