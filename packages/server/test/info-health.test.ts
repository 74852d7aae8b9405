import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

describe('GET /, /health, /ready', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await startProxy();
  });
  after(() => proxy?.close());

  it('describes the server without secrets and without a token', async () => {
    const res = await fetch(`${proxy.url}/`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const body = JSON.parse(text) as { name: string; version: string; endpoints: Array<{ path: string }> };
    assert.equal(body.name, 'mcp-proxy');
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.ok(body.endpoints.some((e) => e.path === '/proxy'));
    assert.ok(!text.includes(proxy.token));
  });

  it('answers liveness and readiness without a token', async () => {
    const health = await fetch(`${proxy.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
    const ready = await fetch(`${proxy.url}/ready`);
    assert.equal(ready.status, 200);
  });

  it('answers an unknown route with a JSON-RPC 404', async () => {
    const res = await fetch(`${proxy.url}/nope?proxy_token=x`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'not_found');
  });

  it('echoes or assigns X-Request-Id', async () => {
    const mine = await fetch(`${proxy.url}/health`, { headers: { 'x-request-id': 'req-123' } });
    assert.equal(mine.headers.get('x-request-id'), 'req-123');
    const assigned = await fetch(`${proxy.url}/health`);
    assert.match(assigned.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });
});
