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

  it('parse an address however it is spelled: mapped forms, NAT64, ports; HTTP and /ws alike', async () => {
    const proxy = await startProxy({
      RATE_LIMIT_AUTH_FAILURES_PER_IP: '2',
      TRUSTED_PROXIES: '127.0.0.1',
      WS_ALLOW_MISSING_ORIGIN: 'true',
    });
    try {
      // Non-canonical IPv4-mapped spellings are the IPv4 address, not one shared bucket.
      assert.equal(await failFrom(proxy.url, '::FFFF:192.0.2.9'), 401);
      assert.equal(await failFrom(proxy.url, '0:0:0:0:0:ffff:c000:209'), 401);
      assert.equal(await failFrom(proxy.url, '192.0.2.9'), 429, 'three spellings of one address');
      assert.equal(
        await failFrom(proxy.url, '::FFFF:192.0.2.10'),
        401,
        'another mapped address is another client',
      );
      // NAT64 (64:ff9b::/96) carries one IPv4 client per address, not one per /64.
      assert.equal(await failFrom(proxy.url, '64:ff9b::198.51.100.1'), 401);
      assert.equal(await failFrom(proxy.url, '64:ff9b::198.51.100.1'), 401);
      assert.equal(await failFrom(proxy.url, '64:ff9b::198.51.100.2'), 401, 'another NAT64 client');
      assert.equal(await failFrom(proxy.url, '198.51.100.1'), 429, 'the NAT64 address is its IPv4 address');
      // A port (as Azure Application Gateway appends) is not another client.
      assert.equal(await failFrom(proxy.url, '203.0.113.5:5555'), 401);
      assert.equal(await failFrom(proxy.url, '203.0.113.5:5556'), 401);
      assert.equal(await failFrom(proxy.url, '203.0.113.5:5557'), 429);
      assert.equal(await failFrom(proxy.url, '[2001:db8:9:9::1]:443'), 401);
      assert.equal(await failFrom(proxy.url, '2001:db8:9:9::2'), 401);
      assert.equal(await failFrom(proxy.url, '2001:db8:9:9::3'), 429);
      // The /ws handshake reads the same hop as HTTP, port and all.
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=x`, ['mcp'], {
          headers: { 'x-forwarded-for': '203.0.113.5:6000' },
        });
        ws.once('unexpected-response', (_request, response) => {
          resolve(response.statusCode ?? 0);
          ws.terminate();
        });
        ws.once('error', () => resolve(0));
      });
      assert.equal(status, 429);
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
