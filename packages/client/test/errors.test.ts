/**
 * Every error class, produced by the real proxy (and real failures behind it), not by mocks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../server/test/helpers/net.ts';
import { startProxy } from '../../server/test/helpers/proxy.ts';
import {
  InvalidInputError,
  MCPProxyClient,
  MCPProxyError,
  McpError,
  NetworkError,
  ProxyAuthError,
  RateLimitError,
  SessionError,
  TargetForbiddenError,
  TimeoutError,
  UpstreamAuthError,
  UpstreamError,
} from '../src/index.ts';
import { type Stack, startStack } from './helpers/stack.ts';
import { CHALLENGE, startHanging, startRefusing } from './helpers/upstreams.ts';

/** Resolves with what `promise` rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (error: unknown) => error,
  );
}

describe('errors the proxy reports, mapped to classes', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack('streamableHttp');
  });
  after(() => stack.close());

  it('a wrong proxy token is a ProxyAuthError (401, unauthorized)', async () => {
    const error = await rejection(stack.client({ proxyToken: 'not-the-right-token-at-all' }).initialize());
    assert.ok(error instanceof ProxyAuthError, String(error));
    assert.ok(error instanceof MCPProxyError);
    assert.equal(error.name, 'ProxyAuthError');
    assert.equal(error.code, 'unauthorized');
    assert.equal(error.status, 401);
    assert.equal(error.rpcCode, -33001);
    assert.match(error.requestId ?? '', /.+/, 'X-Request-Id is kept for support');
    assert.ok(!(error instanceof TimeoutError), 'brands are per class');
    assert.doesNotMatch(error.message, /not-the-right-token/, 'the token is never echoed');
  });

  it('a file: target is a TargetForbiddenError with reason scheme_not_allowed', async () => {
    const error = await rejection(stack.client({ mcpServerUrl: 'file:///etc/passwd' }).initialize());
    assert.ok(error instanceof TargetForbiddenError, String(error));
    assert.equal(error.code, 'target_forbidden');
    assert.equal(error.status, 403);
    assert.equal(error.reason, 'scheme_not_allowed');
  });

  it('a loopback target on a proxy that forbids private networks is a TargetForbiddenError', async () => {
    const strict = await startProxy({ ALLOW_PRIVATE_NETWORKS: 'false' });
    try {
      const client = new MCPProxyClient({
        proxyUrl: strict.url,
        proxyToken: strict.token,
        mcpServerUrl: stack.upstream.url,
      });
      const error = await rejection(client.initialize());
      assert.ok(error instanceof TargetForbiddenError, String(error));
      assert.ok(
        error.reason === 'address_forbidden' || error.reason === 'host_forbidden',
        `reason ${error.reason}`,
      );
      assert.doesNotMatch(error.message, /127\.0\.0\.1/, 'no internal address in the message');
    } finally {
      await strict.close();
    }
  });

  it('a closed port is an UpstreamError (upstream_unreachable, ECONNREFUSED)', async () => {
    const port = await freePort();
    const error = await rejection(stack.client({ mcpServerUrl: `http://127.0.0.1:${port}/mcp` }).ping());
    assert.ok(error instanceof UpstreamError, String(error));
    assert.equal(error.code, 'upstream_unreachable');
    assert.equal(error.status, 502);
    assert.equal(error.reason, 'ECONNREFUSED');
  });

  it('a call before initialize that the MCP server refuses is an UpstreamError with its status', async () => {
    const error = await rejection(stack.client().listTools());
    assert.ok(error instanceof UpstreamError, String(error));
    assert.equal(error.code, 'upstream_rejected');
    assert.equal(error.upstreamStatus, 400);
  });

  it('an MCP server refusing the MCP token is an UpstreamAuthError with its WWW-Authenticate', async () => {
    const refusing = await startRefusing();
    try {
      const error = await rejection(
        stack.client({ mcpServerUrl: refusing.url, mcpToken: 'expired' }).initialize(),
      );
      assert.ok(error instanceof UpstreamAuthError, String(error));
      assert.ok(error instanceof UpstreamError);
      assert.equal(error.code, 'upstream_unauthorized');
      assert.equal(error.status, 401);
      assert.equal(error.upstreamStatus, 401);
      assert.equal(error.wwwAuthenticate, CHALLENGE);
    } finally {
      await refusing.stop();
    }
  });

  it('a proxy session that expired is a SessionError to re-initialize after', async () => {
    const sse = await startStack('sse');
    try {
      const client = sse.client({
        // Stand in for an expired session: after initialize, send an id the proxy never issued.
        fetch: (url, init) =>
          fetch(url, {
            ...init,
            headers: init.headers['mcp-session-id']
              ? { ...init.headers, 'mcp-session-id': 'mcpp-expired-session-id' }
              : init.headers,
          }),
      });
      const error = await rejection(client.initialize());
      assert.ok(error instanceof SessionError, String(error));
      assert.equal(error.code, 'session_not_found');
      assert.equal(error.status, 404);
      assert.equal(error.expired, true);
    } finally {
      await sse.close();
    }
  });

  it('an envelope the proxy refuses is an InvalidInputError naming the field', async () => {
    const error = await rejection(
      stack.client({ mcpServerUrl: `http://127.0.0.1/${'x'.repeat(3000)}` }).ping(),
    );
    assert.ok(error instanceof InvalidInputError, String(error));
    assert.equal(error.code, 'invalid_envelope');
    assert.equal(error.status, 400);
    assert.equal(error.field, 'mcp_server_url');
  });

  it('an unknown method is an McpError carrying the JSON-RPC code, in the one hierarchy', async () => {
    const client = stack.client();
    await client.initialize();
    const error = await rejection(client.request('tools/unknown-method'));
    assert.ok(error instanceof McpError, String(error));
    assert.equal(error.code, -32601);
    assert.equal(error.name, 'McpError');
    assert.ok(error instanceof MCPProxyError, 'McpError is an MCPProxyError like every client error');
    assert.equal(error.rpcCode, -32601);
    assert.equal(error.status, undefined);
    assert.ok(!(error instanceof UpstreamError), 'brands are per class');
  });
});

describe('rate limits', () => {
  it('a proxy rate limit is a RateLimitError (429) saying when to retry', async () => {
    const stack = await startStack('streamableHttp', {
      RATE_LIMIT_PER_TOKEN: '2',
      RATE_LIMIT_WINDOW_MS: '60000',
    });
    try {
      const client = stack.client();
      await client.initialize(); // initialize + notifications/initialized: the two allowed
      const error = await rejection(client.ping());
      assert.ok(error instanceof RateLimitError, String(error));
      assert.ok(error instanceof MCPProxyError);
      assert.equal(error.code, 'rate_limited');
      assert.equal(error.status, 429);
      assert.ok((error.retryAfterSeconds ?? 0) > 0, `retryAfterSeconds ${error.retryAfterSeconds}`);
    } finally {
      await stack.close();
    }
  });
});

describe('timeouts', () => {
  it("the proxy's upstream timeout is a TimeoutError (upstream_timeout, 504)", async () => {
    const hanging = await startHanging();
    const proxy = await startProxy({ UPSTREAM_TIMEOUT_MS: '300' });
    try {
      const client = new MCPProxyClient({
        proxyUrl: proxy.url,
        proxyToken: proxy.token,
        mcpServerUrl: hanging.url,
      });
      const error = await rejection(client.ping());
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(error.code, 'upstream_timeout');
      assert.equal(error.status, 504);
      assert.ok(hanging.received() >= 1, 'the request reached the upstream');
    } finally {
      await proxy.close();
      await hanging.stop();
    }
  });

  it('a client-side timeout is a TimeoutError (client_timeout) and fires on time', async () => {
    const hanging = await startHanging();
    const proxy = await startProxy();
    try {
      const client = new MCPProxyClient({
        proxyUrl: proxy.url,
        proxyToken: proxy.token,
        mcpServerUrl: hanging.url,
        timeoutMs: 10_000,
      });
      const started = performance.now();
      const error = await rejection(client.ping({ timeoutMs: 200 }));
      const elapsed = performance.now() - started;
      assert.ok(error instanceof TimeoutError, String(error));
      assert.equal(error.code, 'client_timeout');
      assert.equal(error.status, undefined, 'no answer from the proxy');
      assert.ok(elapsed >= 190 && elapsed < 5_000, `took ${elapsed} ms`);
    } finally {
      await proxy.close();
      await hanging.stop();
    }
  });
});

describe('errors on the way to the proxy', () => {
  it('a proxy that is not listening is a NetworkError', async () => {
    const port = await freePort();
    const client = new MCPProxyClient({
      proxyUrl: `http://127.0.0.1:${port}`,
      proxyToken: 'any-token-value-1234',
      mcpServerUrl: 'http://127.0.0.1:1/mcp',
    });
    const error = await rejection(client.ping());
    assert.ok(error instanceof NetworkError, String(error));
    assert.equal(error.code, 'network_error');
    assert.ok(error.cause instanceof TypeError, 'fetch failures keep their cause');
  });

  it('a proxyUrl that is not mcp-proxy is an MCPProxyError invalid_response', async () => {
    const stack = await startStack('streamableHttp');
    try {
      // server-everything's own origin: it answers /proxy with a 404 page, not a proxy error.
      const error = await rejection(stack.client({ proxyUrl: new URL(stack.upstream.url).origin }).ping());
      assert.ok(error instanceof MCPProxyError, String(error));
      assert.equal(error.code, 'invalid_response');
      assert.equal(error.status, 404);
    } finally {
      await stack.close();
    }
  });
});
