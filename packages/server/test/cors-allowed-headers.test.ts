/**
 * CORS_ALLOWED_HEADERS (issue #14.17): extra request headers an operator lets browsers send, on
 * top of the proxy's own, e.g. the MCP Inspector's `x-custom-auth-headers` in its Direct mode.
 * Validated as header names; reloadable. The Inspector itself in Chromium is
 * inspector-direct.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const APP = 'http://inspector.example.test:6274';

describe('CORS_ALLOWED_HEADERS', () => {
  let proxy: RunningProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  /** The headers a preflight from APP for `requested` is granted, lower-cased. */
  async function granted(requested: string): Promise<string[]> {
    const res = await fetch(`${proxy?.url}/mcp`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': requested,
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    return (res.headers.get('access-control-allow-headers') ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase());
  }

  it('by default a header the proxy does not know is not granted', async () => {
    proxy = await startProxy({ CORS_ORIGINS: APP });
    const allowed = await granted('content-type,x-proxy-token,x-custom-auth-headers');
    assert.ok(allowed.includes('x-proxy-token'));
    assert.ok(!allowed.includes('x-custom-auth-headers'), allowed.join(','));
  });

  it('grants the configured headers next to the built-in ones, on preflights and plain requests', async () => {
    proxy = await startProxy({ CORS_ORIGINS: APP, CORS_ALLOWED_HEADERS: 'x-custom-auth-headers, X-Tenant' });
    const allowed = await granted(
      'content-type,x-proxy-token,x-custom-auth-headers,x-tenant,mcp-param-region',
    );
    for (const header of [
      'x-custom-auth-headers',
      'x-tenant',
      'x-proxy-token',
      'mcp-session-id',
      'mcp-param-region',
    ]) {
      assert.ok(allowed.includes(header), `${header} in ${allowed.join(',')}`);
    }
    const plain = await fetch(`${proxy.url}/mcp`, {
      method: 'OPTIONS',
      headers: { origin: APP, 'access-control-request-method': 'GET' },
    });
    assert.match(plain.headers.get('access-control-allow-headers') ?? '', /x-custom-auth-headers/i);
  });

  it('a reload changes the list without a restart', async () => {
    proxy = await startProxy({ CORS_ORIGINS: APP });
    const changed = proxy.app.reload(
      loadConfig({
        env: {
          PROXY_TOKEN: TEST_TOKEN,
          ALLOW_PRIVATE_NETWORKS: 'true',
          CORS_ORIGINS: APP,
          CORS_ALLOWED_HEADERS: 'x-custom-auth-headers',
        },
      }),
    );
    assert.ok(!changed.includes('corsAllowedHeaders'), 'no restart needed');
    assert.ok((await granted('x-custom-auth-headers')).includes('x-custom-auth-headers'));
  });

  for (const bad of ['x custom', '*', 'x-a:b', 'x-é']) {
    it(`refuses ${JSON.stringify(bad)} with one line naming the setting`, () => {
      assert.throws(
        () => loadConfig({ env: { CORS_ALLOWED_HEADERS: `x-ok,${bad}` } }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(
            error.message,
            /^Invalid configuration: CORS_ALLOWED_HEADERS: each entry must be an HTTP header name/,
          );
          return true;
        },
      );
    });
  }
});
