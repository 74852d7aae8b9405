import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

describe('rate limits shared through Redis', () => {
  it('two proxy instances count against one limit', async () => {
    const redis = await startRedis();
    const upstream = await startMisbehaving();
    const env = { REDIS_URL: redis.url, RATE_LIMIT_PER_TOKEN: '3', RATE_LIMIT_WINDOW_MS: '60000' };
    const a = await startProxy(env);
    const b = await startProxy(env);
    try {
      const body = { mcp_server_url: `${upstream.origin}/echo-auth`, jsonrpc: '2.0', id: 1, method: 'ping' };
      const statuses = [];
      for (const proxy of [a, b, a, b]) statuses.push((await postProxy(proxy, body)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const refused = await postProxy(a, body);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    } finally {
      await a.close();
      await b.close();
      await upstream.stop();
      await redis.stop();
    }
  });

  it('lets traffic through, with a warning, when Redis cannot be reached', async () => {
    const upstream = await startMisbehaving();
    const proxy = await startProxy({
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      RATE_LIMIT_PER_TOKEN: '1',
    });
    try {
      const body = { mcp_server_url: `${upstream.origin}/echo-auth`, jsonrpc: '2.0', id: 1, method: 'ping' };
      assert.equal((await postProxy(proxy, body)).status, 200);
      assert.equal((await postProxy(proxy, body)).status, 200);
      assert.match(proxy.logs.join('\n'), /rate limits not enforced/);
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });
});
