/**
 * Edges of the POST /proxy contract a healthy proxy and server-everything never produce
 * (several pages, a looping cursor, a mismatched id, a code from a newer proxy), driven through
 * the client's public `fetch` option.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FetchLike, MCPProxyClient, MCPProxyError, type Tool } from '../src/index.ts';
import { collect } from './helpers/stack.ts';

type Reply = { status?: number; body?: unknown; headers?: Record<string, string> };

/** A fetch double answering each POST /proxy envelope with `answer(envelope)`. */
function fakeProxy(answer: (envelope: Record<string, unknown>) => Reply) {
  const sent: Record<string, unknown>[] = [];
  const fetch: FetchLike = async (_url, init) => {
    const envelope = JSON.parse(init.body ?? '{}') as Record<string, unknown>;
    sent.push(envelope);
    const reply = answer(envelope);
    return new Response(reply.body === undefined ? null : JSON.stringify(reply.body), {
      status: reply.status ?? 200,
      headers: { 'content-type': 'application/json', ...reply.headers },
    });
  };
  const client = new MCPProxyClient({
    proxyUrl: 'http://proxy.test',
    proxyToken: 'token-for-the-double',
    mcpServerUrl: 'http://mcp.test/mcp',
    fetch,
  });
  return { client, sent };
}

const tool = (name: string): Tool => ({ name, inputSchema: { type: 'object' } });

describe('POST /proxy contract edges', () => {
  it('iterate() follows nextCursor across pages and sends each cursor', async () => {
    const pages: Record<string, { tools: Tool[]; nextCursor?: string }> = {
      '': { tools: [tool('a'), tool('b')], nextCursor: 'p2' },
      p2: { tools: [tool('c')], nextCursor: 'p3' },
      p3: { tools: [tool('d')] },
    };
    const { client, sent } = fakeProxy((e) => {
      const cursor = (e.params as { cursor?: string } | undefined)?.cursor ?? '';
      return { body: { jsonrpc: '2.0', id: e.id, result: pages[cursor] } };
    });
    const names = (await collect(client.iterate('tools'))).map((t) => t.name);
    assert.deepEqual(names, ['a', 'b', 'c', 'd']);
    assert.deepEqual(
      sent.map((e) => e.params),
      [undefined, { cursor: 'p2' }, { cursor: 'p3' }],
    );
    const second = await client.listTools({ cursor: 'p2' });
    assert.equal(second.nextCursor, 'p3');
  });

  it('iterate() stops a server that repeats a cursor', async () => {
    const { client, sent } = fakeProxy((e) => ({
      body: { jsonrpc: '2.0', id: e.id, result: { prompts: [], nextCursor: 'same' } },
    }));
    await assert.rejects(
      collect(client.iterate('prompts')),
      (e) => e instanceof MCPProxyError && e.code === 'invalid_response',
    );
    assert.equal(sent.length, 2);
  });

  it('a response to another id is an invalid_response', async () => {
    const { client } = fakeProxy(() => ({ body: { jsonrpc: '2.0', id: 999, result: {} } }));
    await assert.rejects(client.ping(), (e) => e instanceof MCPProxyError && e.code === 'invalid_response');
  });

  it('a 200 that is not JSON-RPC is an invalid_response', async () => {
    const { client } = fakeProxy(() => ({ body: { hello: 'world' } }));
    await assert.rejects(client.ping(), (e) => e instanceof MCPProxyError && e.code === 'invalid_response');
  });

  it('a code from a newer proxy keeps its code, status and data on the root class', async () => {
    const { client } = fakeProxy((e) => ({
      status: 418,
      headers: { 'x-request-id': 'req-42' },
      body: {
        jsonrpc: '2.0',
        id: e.id,
        error: { code: -32099, message: 'Brewing.', data: { code: 'teapot_busy', cups: 3 } },
      },
    }));
    const error = await client.ping().then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof MCPProxyError);
    assert.equal(error.constructor, MCPProxyError);
    assert.equal(error.code, 'teapot_busy');
    assert.equal(error.status, 418);
    assert.equal(error.rpcCode, -32099);
    assert.equal(error.requestId, 'req-42');
    assert.deepEqual(error.data, { cups: 3 });
  });

  it('ids are unique per client and the envelope carries target, token and upstream transport', async () => {
    const sent: Record<string, unknown>[] = [];
    const client = new MCPProxyClient({
      proxyUrl: 'http://proxy.test/base/',
      proxyToken: 'token-for-the-double',
      mcpServerUrl: 'http://mcp.test/mcp',
      mcpToken: 'mcp-secret',
      upstreamTransport: 'sse',
      fetch: async (url, init) => {
        const envelope = JSON.parse(init.body ?? '{}') as Record<string, unknown>;
        sent.push({ url, ...envelope });
        return new Response(JSON.stringify({ jsonrpc: '2.0', id: envelope.id, result: {} }));
      },
    });
    await client.ping();
    await client.ping();
    assert.equal(sent[0]?.url, 'http://proxy.test/base/proxy', 'a path prefix is kept');
    assert.equal(sent[0]?.mcp_token, 'mcp-secret');
    assert.equal(sent[0]?.transport, 'sse');
    assert.equal(sent[0]?.mcp_server_url, 'http://mcp.test/mcp');
    assert.notEqual(sent[0]?.id, sent[1]?.id);
  });
});
