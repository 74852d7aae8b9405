import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { postProxy, startProxy } from './helpers/proxy.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/** Status of a failed-auth POST /proxy appearing to come from `address` (through a trusted proxy). */
async function failFrom(url: string, address: string): Promise<number> {
  return (await postProxy({ url, token: 'wrong-token-0123456789abcdef' }, {}, { 'x-forwarded-for': address }))
    .status;
}

describe('per-address limits', () => {
  it('count IPv6 clients per /64 and IPv4-mapped addresses as their IPv4 address', async () => {
    const proxy = await startProxy({
      RATE_LIMIT_AUTH_FAILURES_PER_IP: '2',
      TRUSTED_PROXIES: '127.0.0.1',
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
    try {
      assert.equal(await failFrom(proxy.url, '2001:db8:1:2::1'), 401);
      assert.equal(await failFrom(proxy.url, '2001:db8:1:2:ffff::2'), 401);
      // A third address of the same /64 is the same client.
      assert.equal(await failFrom(proxy.url, '2001:0db8:0001:0002::3'), 429);
      // The /ws handshake counts the same subject.
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=x`, ['mcp'], {
          headers: { 'x-forwarded-for': '2001:db8:1:2::99' },
        });
        ws.once('unexpected-response', (_request, response) => {
          resolve(response.statusCode ?? 0);
          ws.terminate();
        });
        ws.once('error', () => resolve(0));
      });
      assert.equal(status, 429);
      // The neighbouring /64 is another client.
      assert.equal(await failFrom(proxy.url, '2001:db8:1:3::1'), 401);

      assert.equal(await failFrom(proxy.url, '::ffff:192.0.2.7'), 401);
      assert.equal(await failFrom(proxy.url, '192.0.2.7'), 401);
      assert.equal(await failFrom(proxy.url, '::ffff:192.0.2.7'), 429, 'mapped and plain are one client');
      assert.equal(await failFrom(proxy.url, '192.0.2.8'), 401, 'IPv4 stays per address');
    } finally {
      await proxy.close();
    }
  });

  it('limit failed authentications on /metrics', async () => {
    const proxy = await startProxy({ METRICS_TOKEN, RATE_LIMIT_AUTH_FAILURES_PER_IP: '2' });
    try {
      const scrape = (token: string) =>
        fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        });
      assert.equal(await scrape('guess-0123456789abcdef-1'), 401);
      assert.equal(await scrape('guess-0123456789abcdef-2'), 401);
      assert.equal(await scrape('guess-0123456789abcdef-3'), 429);
      assert.equal(await scrape(METRICS_TOKEN), 429, 'the address is refused before any check');
    } finally {
      await proxy.close();
    }
  });
});
