/**
 * MCP 2026-07-28 request metadata through the proxy: headers derived for body-only callers,
 * unknown Mcp-Param-* headers forwarded, and header/body disagreement refused (400, -32020)
 * before any upstream call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type MisbehavingUpstream, startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'modern-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const CALL = {
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'wetter-größe', arguments: { region: 'eu' }, _meta: META },
};

describe('MCP 2026-07-28 request metadata', () => {
  let upstream: MisbehavingUpstream;
  let proxy: RunningProxy;
  before(async () => {
    upstream = await startMisbehaving();
    proxy = await startProxy({ HOST: '127.0.0.1' });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  const mcpPost = (headers: Record<string, string>, body: unknown = CALL) =>
    fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': proxy.token,
        'x-mcp-server-url': `${upstream.origin}/echo-headers`,
        'x-mcp-transport': 'streamable-http',
        ...headers,
      },
      body: JSON.stringify(body),
    });

  it('POST /proxy derives the headers from the body and forwards Mcp-Param-*', async () => {
    const reply = await postProxy(
      proxy,
      { mcp_server_url: `${upstream.origin}/echo-headers`, transport: 'streamable-http', ...CALL },
      { 'mcp-param-region': 'eu' },
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const seen = reply.body.result.headers;
    assert.equal(seen['mcp-method'], 'tools/call');
    assert.equal(seen['mcp-protocol-version'], '2026-07-28');
    assert.equal(seen['mcp-name'], `=?base64?${Buffer.from('wetter-größe').toString('base64')}?=`);
    assert.equal(seen['mcp-param-region'], 'eu');
  });

  it('POST /proxy refuses caller headers that disagree with the body', async () => {
    const before = upstream.hits.get('/echo-headers') ?? 0;
    const reply = await postProxy(
      proxy,
      { mcp_server_url: `${upstream.origin}/echo-headers`, transport: 'streamable-http', ...CALL },
      { 'mcp-method': 'tools/list', 'mcp-protocol-version': '2026-07-28' },
    );
    assert.equal(reply.status, 400);
    assert.equal(reply.body.error.code, -32020);
    assert.equal(reply.body.error.data.code, 'header_mismatch');
    assert.equal(upstream.hits.get('/echo-headers') ?? 0, before, 'no upstream call was spent');
  });

  it('/mcp forwards a matching modern request with an unknown Mcp-Param-* header', async () => {
    const response = await mcpPost({
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': `=?base64?${Buffer.from('wetter-größe').toString('base64')}?=`,
      'mcp-param-tenant': 'acme',
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { result: { headers: Record<string, string> } };
    assert.equal(body.result.headers['mcp-param-tenant'], 'acme');
    assert.equal(body.result.headers['mcp-method'], 'tools/call');
    assert.equal(body.result.headers['mcp-session-id'], undefined, 'no session id is invented');
  });

  const mismatches: Array<[string, Record<string, string>, RegExp]> = [
    [
      'method',
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list', 'mcp-name': 'x' },
      /Mcp-Method/,
    ],
    ['missing method', { 'mcp-protocol-version': '2026-07-28' }, /Mcp-Method header is missing/],
    ['version', { 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/call' }, /MCP-Protocol-Version/],
    [
      'missing name',
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' },
      /Mcp-Name header is missing/,
    ],
    [
      'name',
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'other' },
      /Mcp-Name/,
    ],
  ];
  for (const [what, headers, message] of mismatches) {
    it(`/mcp refuses a modern request whose ${what} header disagrees (400, -32020)`, async () => {
      const before = upstream.hits.get('/echo-headers') ?? 0;
      const response = await mcpPost(headers);
      assert.equal(response.status, 400);
      const body = (await response.json()) as { id: number; error: { code: number; message: string } };
      assert.equal(body.error.code, -32020);
      assert.equal(body.id, 1);
      assert.match(body.error.message, message);
      assert.equal(upstream.hits.get('/echo-headers') ?? 0, before, 'no upstream call was spent');
    });
  }

  it('leaves session-era requests alone', async () => {
    const response = await mcpPost(
      { 'mcp-protocol-version': '2025-11-25' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x' } },
    );
    assert.equal(response.status, 200);
  });
});
