/**
 * Review of issue 17, finding 1: on `/mcp` and `/servers/{name}/mcp` to a Streamable HTTP server
 * (the stateless pass-through), a call to a hidden tool must never reach the upstream, with or
 * without a session, and a `tools/list` is asked upstream once. The upstream records what it
 * receives, so "the caller was told Unknown tool" is not mistaken for "it did not run".
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';

const VERSION = '2025-06-18';
/** A config token granted only `harmless`. */
const NARROW = 'narrow-token-0123456789abcdef-hidden';

describe('hidden tools on the Streamable HTTP pass-through', () => {
  let upstream: RecordingUpstream;
  let proxy: RunningProxy;
  before(async () => {
    upstream = await startRecordingUpstream(['harmless', 'drop_database']);
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-hidden-')), 'proxy.json');
    writeFileSync(
      config,
      JSON.stringify({
        servers: { rec: { url: upstream.url, transport: 'streamable-http', tools: ['harmless'] } },
        tokens: [{ sha256: createHash('sha256').update(NARROW).digest('hex'), tools: ['harmless'] }],
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: config });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${proxy.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': proxy.token,
        'mcp-protocol-version': VERSION,
        ...headers,
      },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      session: response.headers.get('mcp-session-id'),
      text: await response.text(),
    };
  }

  it("a hidden tool's call never reaches the upstream, in a session or not", async () => {
    const path = '/servers/rec/mcp';
    const before = upstream.calledTools().length;
    const init = await post(path, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(init.status, 200);
    assert.ok(init.session, 'the proxy seals the upstream session id');
    const call = {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'drop_database', arguments: {} },
    };
    const inSession = await post(path, call, { 'mcp-session-id': init.session });
    assert.match(inSession.text, /Unknown tool: drop_database/);
    const without = await post(path, { ...call, id: 3 });
    assert.match(without.text, /Unknown tool: drop_database/);
    const listsBefore = upstream.count('tools/list');
    const list = await post(
      path,
      { jsonrpc: '2.0', id: 4, method: 'tools/list' },
      { 'mcp-session-id': init.session },
    );
    assert.deepEqual(
      JSON.parse(list.text).result.tools.map((tool: { name: string }) => tool.name),
      ['harmless'],
    );
    // A last exchange, so anything the proxy still sent after answering has arrived.
    await post(path, { jsonrpc: '2.0', id: 5, method: 'ping' }, { 'mcp-session-id': init.session });
    assert.equal(upstream.count('tools/list') - listsBefore, 1, 'tools/list is asked upstream once');
    assert.deepEqual(upstream.calledTools().slice(before), [], 'no hidden call reached the upstream');
  });

  it('/mcp to a raw URL: a principal’s tool grant stops the hidden call the same way', async () => {
    const before = upstream.calledTools().length;
    const headers = { 'x-proxy-token': NARROW, 'x-mcp-server-url': upstream.url };
    const init = await post(
      '/mcp',
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } },
      },
      headers,
    );
    assert.equal(init.status, 200);
    const call = {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'drop_database', arguments: {} },
    };
    const hidden = await post('/mcp', call, { ...headers, 'mcp-session-id': init.session ?? '' });
    assert.match(hidden.text, /Unknown tool: drop_database/);
    await post('/mcp', { jsonrpc: '2.0', id: 3, method: 'ping' }, headers);
    assert.deepEqual(upstream.calledTools().slice(before), []);
  });

  it('an SDK client sees only the allowed tool and cannot run the hidden one', async () => {
    const before = upstream.calledTools().length;
    const client = new Client({ name: 'hidden', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${proxy.url}/servers/rec/mcp`), {
        requestInit: { headers: { 'x-proxy-token': proxy.token } },
      }),
    );
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(
        tools.map((tool) => tool.name),
        ['harmless'],
      );
      const hidden = await client
        .callTool({ name: 'drop_database', arguments: {} })
        .catch((error: Error) => error);
      assert.match(String(hidden instanceof Error ? hidden.message : JSON.stringify(hidden)), /Unknown tool/);
      await client.callTool({ name: 'harmless', arguments: {} });
      assert.deepEqual(upstream.calledTools().slice(before), ['harmless']);
    } finally {
      await client.close();
    }
  });
});
