import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const APP = 'http://app.example.test:5173';

describe('CORS', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await startProxy({ CORS_ORIGINS: `${APP},https://other.example.test` });
  });
  after(() => proxy?.close());

  const preflight = (origin: string, headers = 'content-type,x-proxy-token') =>
    fetch(`${proxy.url}/proxy`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers },
    });

  it('answers a preflight from a configured origin before auth, and lets the browser cache it', async () => {
    const res = await preflight(APP, 'content-type,x-proxy-token,mcp-session-id,mcp-param-region');
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const h of [
      'x-proxy-token',
      'content-type',
      'mcp-session-id',
      'mcp-protocol-version',
      'last-event-id',
      'mcp-param-region',
    ]) {
      assert.ok(
        allowed.split(',').some((a) => a.trim() === h),
        `${h} in ${allowed}`,
      );
    }
    assert.ok(Number(res.headers.get('access-control-max-age')) > 0);
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
  });

  it('gives a foreign origin no CORS grant', async () => {
    const res = await preflight('https://evil.example.test');
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });

  it('puts CORS headers on error responses so the browser can read a 401', async () => {
    const res = await fetch(`${proxy.url}/proxy`, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    for (const h of ['mcp-session-id', 'mcp-protocol-version', 'www-authenticate'])
      assert.ok(exposed.includes(h), exposed);
    const body = (await res.json()) as { error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'unauthorized');
  });

  it('sends no CORS headers at all when no origin is configured', async () => {
    const closed = await startProxy();
    try {
      const res = await fetch(`${closed.url}/health`, { headers: { origin: APP } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    } finally {
      await closed.close();
    }
  });

  it('allows any origin with "*" and never with credentials', async () => {
    const open = await startProxy({ CORS_ORIGINS: '*' });
    try {
      const res = await fetch(`${open.url}/health`, { headers: { origin: 'https://anywhere.example.test' } });
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-allow-credentials'), null);
    } finally {
      await open.close();
    }
  });
});
