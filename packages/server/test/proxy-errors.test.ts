import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type MisbehavingUpstream, startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const ROTATED = 'rotated-token-aaaaaaaaaaaaaaaaaaaa';

describe('POST /proxy failure modes', () => {
  let upstream: MisbehavingUpstream;
  let proxy: RunningProxy;
  const envelope = (path: string, extra: Record<string, unknown> = {}) => ({
    mcp_server_url: `${upstream.origin}${path}`,
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/list',
    ...extra,
  });

  before(async () => {
    upstream = await startMisbehaving();
    proxy = await startProxy({
      PROXY_TOKENS: ROTATED,
      UPSTREAM_TIMEOUT_MS: '400',
      UPSTREAM_RESPONSE_LIMIT_BYTES: '65536',
      BODY_LIMIT_BYTES: '4096',
    });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  describe('auth', () => {
    it('rejects a missing token with 401 and a JSON-RPC error', async () => {
      const reply = await postProxy({ url: proxy.url, token: '' }, envelope('/echo-auth'), {
        'x-proxy-token': '',
      });
      assert.equal(reply.status, 401);
      assert.equal(reply.body.jsonrpc, '2.0');
      assert.equal(reply.body.error.code, -33001);
      assert.equal(reply.body.error.data.code, 'unauthorized');
      assert.equal(upstream.hits.get('/echo-auth'), undefined, 'nothing was forwarded');
    });

    it('rejects a wrong token with 401', async () => {
      const reply = await postProxy({ url: proxy.url, token: `${proxy.token}x` }, envelope('/echo-auth'));
      assert.equal(reply.status, 401);
      assert.match(reply.body.error.message, /Invalid proxy token/);
    });

    it('accepts every configured token (rotation)', async () => {
      for (const token of [proxy.token, ROTATED]) {
        const reply = await postProxy({ url: proxy.url, token }, envelope('/echo-auth'));
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
      }
    });

    it('sends mcp_token upstream as a Bearer token and the proxy token not at all', async () => {
      const reply = await postProxy(proxy, envelope('/echo-auth', { mcp_token: 'upstream-secret' }));
      assert.equal(reply.body.result.authorization, 'Bearer upstream-secret');
      const none = await postProxy(proxy, envelope('/echo-auth'));
      assert.equal(none.body.result.authorization, null);
    });
  });

  describe('bad input', () => {
    it('answers malformed JSON with 400 parse_error', async () => {
      const reply = await postProxy(proxy, '{"jsonrpc": "2.0", "id": ');
      assert.equal(reply.status, 400);
      assert.equal(reply.body.error.code, -32700);
      assert.equal(reply.body.error.data.code, 'parse_error');
      assert.equal(reply.body.id, null);
    });

    const cases: Array<[string, unknown, RegExp]> = [
      [
        'missing method',
        { mcp_server_url: 'http://127.0.0.1:1/', jsonrpc: '2.0', id: 1 },
        /method is required/,
      ],
      [
        'missing url',
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        /exactly one of mcp_server_url .* or server/,
      ],
      [
        'wrong jsonrpc',
        { mcp_server_url: 'http://127.0.0.1:1/', jsonrpc: '1.0', id: 1, method: 'ping' },
        /jsonrpc/,
      ],
      [
        'unknown field',
        { mcp_server_url: 'http://x/', jsonrpc: '2.0', id: 1, method: 'ping', mcp_sever: 1 },
        /"mcp_sever"/,
      ],
      ['array body', [{ jsonrpc: '2.0' }], /must be a JSON object/],
      [
        'params not an object',
        { mcp_server_url: 'http://x/', jsonrpc: '2.0', id: 1, method: 'a', params: [1] },
        /params/,
      ],
      [
        'bad transport',
        { mcp_server_url: 'http://x/', jsonrpc: '2.0', id: 1, method: 'a', transport: 'smoke' },
        /transport/,
      ],
    ];
    for (const [name, body, message] of cases) {
      it(`answers an invalid envelope (${name}) with 400 invalid_envelope`, async () => {
        const reply = await postProxy(proxy, body);
        assert.equal(reply.status, 400);
        assert.equal(reply.body.error.code, -32600);
        assert.equal(reply.body.error.data.code, 'invalid_envelope');
        assert.match(reply.body.error.message, message);
      });
    }

    it('echoes the request id in an envelope error', async () => {
      const reply = await postProxy(proxy, { jsonrpc: '2.0', id: 'abc', method: 'ping' });
      assert.equal(reply.body.id, 'abc');
    });

    it('answers a non-JSON content type with 415', async () => {
      const reply = await postProxy(proxy, 'hello', { 'content-type': 'text/plain' });
      assert.equal(reply.status, 415);
      assert.equal(reply.body.error.data.code, 'unsupported_media_type');
    });

    it('answers an oversized body with 413', async () => {
      const reply = await postProxy(proxy, envelope('/echo-auth', { params: { blob: 'y'.repeat(10_000) } }));
      assert.equal(reply.status, 413);
      assert.equal(reply.body.error.data.code, 'payload_too_large');
    });
  });

  describe('upstream failures', () => {
    it('reports a refused connection as 502 upstream_unreachable', async () => {
      const port = await freePort();
      const reply = await postProxy(proxy, {
        ...envelope('/'),
        mcp_server_url: `http://127.0.0.1:${port}/mcp`,
      });
      assert.equal(reply.status, 502);
      assert.equal(reply.body.error.data.code, 'upstream_unreachable');
      assert.match(reply.body.error.message, /connection refused/);
      assert.doesNotMatch(JSON.stringify(reply.body), /127\.0\.0\.1/, 'no address leaks');
    });

    it('reports an upstream hanging past the timeout as 504 upstream_timeout', async () => {
      const started = Date.now();
      const reply = await postProxy(proxy, envelope('/hang'));
      assert.equal(reply.status, 504);
      assert.equal(reply.body.error.data.code, 'upstream_timeout');
      assert.equal(reply.body.id, 7);
      assert.ok(Date.now() - started < 5_000);
    });

    for (const path of ['/html', '/bad-json', '/not-jsonrpc']) {
      it(`reports a non-MCP answer (${path}) as 502 upstream_protocol_error`, async () => {
        const reply = await postProxy(proxy, envelope(path, { transport: 'streamable-http' }));
        assert.equal(reply.status, 502);
        assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
      });
    }

    it('reports a stream that ends without the response as a protocol error', async () => {
      const reply = await postProxy(proxy, envelope('/sse-stream-no-answer'));
      assert.equal(reply.status, 502);
      assert.equal(reply.body.error.data.code, 'upstream_protocol_error');
    });

    for (const path of ['/huge', '/huge-sse']) {
      it(`refuses an oversized answer (${path}) with upstream_response_too_large`, async () => {
        const reply = await postProxy(proxy, envelope(path));
        assert.equal(reply.status, 502);
        assert.equal(reply.body.error.data.code, 'upstream_response_too_large');
      });
    }

    it('does not follow a redirect', async () => {
      const reply = await postProxy(proxy, envelope('/redirect'));
      assert.equal(reply.status, 403);
      assert.equal(reply.body.error.data.code, 'target_forbidden');
      assert.equal(reply.body.error.data.reason, 'redirect_refused');
      assert.equal(upstream.hits.get('/elsewhere'), undefined);
    });

    it('passes an upstream 401 and its WWW-Authenticate challenge through', async () => {
      const reply = await postProxy(proxy, envelope('/oauth'));
      assert.equal(reply.status, 401);
      assert.equal(reply.body.error.data.code, 'upstream_unauthorized');
      assert.match(reply.headers.get('www-authenticate') ?? '', /resource_metadata=/);
    });

    it('maps an upstream 500 to 502 without echoing its body', async () => {
      const reply = await postProxy(proxy, envelope('/crash', { transport: 'streamable-http' }));
      assert.equal(reply.status, 502);
      assert.equal(reply.body.error.data.code, 'upstream_http_error');
      assert.equal(reply.body.error.data.upstreamStatus, 500);
      assert.doesNotMatch(reply.body.error.message, /srv/);
    });
  });

  describe('egress', () => {
    it('refuses a non-HTTP scheme', async () => {
      const reply = await postProxy(proxy, { ...envelope('/'), mcp_server_url: 'file:///etc/passwd' });
      assert.equal(reply.status, 403);
      assert.equal(reply.body.error.data.code, 'target_forbidden');
      assert.equal(reply.body.error.data.reason, 'scheme_not_allowed');
    });

    it('refuses loopback unless private networks are allowed', async () => {
      const strict = await startProxy({ ALLOW_PRIVATE_NETWORKS: 'false' });
      try {
        const reply = await postProxy(strict, envelope('/echo-auth'));
        assert.equal(reply.status, 403);
        assert.equal(reply.body.error.data.code, 'target_forbidden');
        assert.equal(reply.body.error.data.reason, 'address_forbidden');
      } finally {
        await strict.close();
      }
    });
  });
});
