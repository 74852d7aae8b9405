import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/** Parses Prometheus text exposition into sample name{labels} → value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\S+?)(\{.*\})?\s+(\S+)$/.exec(line);
    if (match) samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}

function sum(samples: Map<string, number>, prefix: string, contains: string[] = []): number {
  let total = 0;
  for (const [key, value] of samples) {
    if (key.startsWith(prefix) && contains.every((part) => key.includes(part))) total += value;
  }
  return total;
}

describe('GET /metrics', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  before(async () => {
    upstream = await startEverything('sse');
    proxy = await startProxy({ METRICS_TOKEN });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  const scrape = (token?: string) =>
    fetch(`${proxy.url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  it('is disabled without METRICS_TOKEN', async () => {
    const plain = await startProxy();
    try {
      const res = await fetch(`${plain.url}/metrics`);
      assert.equal(res.status, 404);
    } finally {
      await plain.close();
    }
  });

  it('wants its own token, not a proxy token', async () => {
    assert.equal((await scrape()).status, 401);
    assert.equal((await scrape(proxy.token)).status, 401);
  });

  it('counts requests, upstream latency, sessions and refusals', async () => {
    const init = await postProxy(proxy, {
      mcp_server_url: upstream.url,
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    assert.equal(init.status, 200);
    await postProxy(
      proxy,
      { mcp_server_url: upstream.url, jsonrpc: '2.0', id: 2, method: 'tools/list' },
      {
        'mcp-session-id': init.headers.get('mcp-session-id') ?? '',
      },
    );
    await postProxy({ url: proxy.url, token: 'wrong-token-000000000000' }, {});
    await postProxy(proxy, {
      mcp_server_url: upstream.url,
      jsonrpc: '2.0',
      id: 3,
      method: 'made/up-method-name',
    });

    const res = await scrape(METRICS_TOKEN);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const samples = parse(await res.text());
    assert.ok(
      sum(samples, 'mcp_proxy_requests_total', [
        'route="/proxy"',
        'mcp_method="initialize"',
        'status="200"',
      ]) >= 1,
    );
    assert.ok(sum(samples, 'mcp_proxy_requests_total', ['mcp_method="tools/list"']) >= 1);
    assert.ok(
      sum(samples, 'mcp_proxy_requests_total', ['mcp_method="other"']) >= 1,
      'unknown methods are not labels',
    );
    assert.equal(sum(samples, 'mcp_proxy_requests_total', ['made/up']), 0);
    assert.ok(sum(samples, 'mcp_proxy_refusals_total', ['reason="unauthorized"']) >= 1);
    assert.ok(sum(samples, 'mcp_proxy_upstream_duration_seconds_count') >= 2);
    assert.ok(sum(samples, 'mcp_proxy_request_duration_seconds_count', ['route="/proxy"']) >= 3);
    assert.equal(samples.get('mcp_proxy_open_sessions'), 1);
    assert.equal(samples.get('mcp_proxy_open_websockets'), 0);
    assert.ok(sum(samples, 'mcp_proxy_http_bytes_total', ['direction="in"']) > 0);
    assert.ok((samples.get('mcp_proxy_process_resident_memory_bytes') ?? 0) > 0);
  });
});
