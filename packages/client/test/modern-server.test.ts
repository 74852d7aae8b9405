/**
 * The client speaks the session era (2025); a server that speaks only MCP 2026-07-28 is reached
 * through the proxy's era bridge. Every transport: initialize, the list/call/read/get methods,
 * and (where the transport carries server requests) an elicitation the server asks for through
 * an InputRequiredResult, which the client's handler answers as an ordinary request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  GREETING_TEXT,
  GREETING_URI,
  type ModernServer,
  startModernServer,
} from '../../server/test/fixtures/modern-server.ts';
import { type RunningProxy, startProxy } from '../../server/test/helpers/proxy.ts';
import { MCPProxyClient, type TextContent } from '../src/index.ts';
import { TRANSPORTS } from './helpers/stack.ts';

for (const transport of TRANSPORTS) {
  describe(`a modern-only (2026-07-28) server through the ${transport} transport`, () => {
    let upstream: ModernServer;
    let proxy: RunningProxy;
    let client: MCPProxyClient;
    before(async () => {
      upstream = await startModernServer();
      proxy = await startProxy({ WS_ALLOW_MISSING_ORIGIN: 'true' });
      client = new MCPProxyClient({
        proxyUrl: proxy.url,
        proxyToken: proxy.token,
        mcpServerUrl: upstream.url,
        transport,
        timeoutMs: 20_000,
      });
    });
    after(async () => {
      await client?.close();
      await proxy?.close();
      await upstream?.stop();
    });

    it('initialize() is answered by the proxy from server/discover', async () => {
      const result = await client.initialize();
      assert.equal(result.serverInfo.name, 'mcp-proxy-modern-fixture');
      assert.ok(result.capabilities.tools);
      assert.ok(!upstream.requests.some((r) => r.method === 'initialize' && r.status === 200));
      assert.ok(upstream.requests.some((r) => r.method === 'server/discover'));
    });

    it('lists and calls tools, reads a resource, gets a prompt', async () => {
      const { tools } = await client.listTools();
      assert.ok(tools.some((tool) => tool.name === 'echo'));
      const echoed = await client.callTool('echo', { message: 'from 2025' });
      assert.equal((echoed.content[0] as TextContent).text, 'Echo: from 2025');
      assert.equal('resultType' in echoed, false, 'modern-only result fields are not shown to a 2025 client');
      const read = await client.readResource(GREETING_URI);
      assert.equal((read.contents[0] as { text?: string }).text, GREETING_TEXT);
      const prompt = await client.getPrompt('greet', { name: 'Ada' });
      assert.ok(prompt.messages.length > 0);
    });

    if (transport !== 'http') {
      it('an elicitation asked through an InputRequiredResult reaches the handler; the call completes', async () => {
        const asked: unknown[] = [];
        client.setRequestHandler('elicitation/create', async (params) => {
          asked.push(params);
          return { action: 'accept', content: { ok: true } };
        });
        await client.initialize(); // re-declare capabilities with the handler in place
        const result = await client.callTool('confirm', { action: 'ship' });
        assert.equal(asked.length, 1);
        assert.match((result.content[0] as TextContent).text, /^Confirmed: ship/);
      });
    }
  });
}
