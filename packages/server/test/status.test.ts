/**
 * `GET /status` and `GET /status.json` (issue 21): who may read them, what they count (requests,
 * errors by code, upstream latency and health per host, sessions, egress refusals), the latency
 * window moving with the injected clock, and no secret in what they show.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcdef012345';

/** An upstream that answers every POST with a 500. */
async function startBroken(): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the snapshot is arbitrary JSON.
async function status(proxy: RunningProxy, token = METRICS_TOKEN): Promise<{ status: number; body: any }> {
  const response = await fetch(`${proxy.url}/status.json`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.json() };
}

const initialize = (url: string, id = 1) => ({
  mcp_server_url: url,
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'status-test', version: '1' },
  },
});

describe('the status page', () => {
  let good: RecordingUpstream;
  let broken: { url: string; stop(): Promise<void> };
  let legacy: EverythingServer;
  let proxy: RunningProxy;
  const clock = new ManualClock();

  before(async () => {
    good = await startRecordingUpstream(['echo']);
    broken = await startBroken();
    legacy = await startEverything('sse');
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-status-')), 'proxy.json');
    writeFileSync(
      config,
      JSON.stringify({
        servers: {
          good: { url: good.url, transport: 'streamable-http' },
          // A configured URL may carry a key: the page shows its host only.
          keyed: { url: `${broken.url}?api_key=configured-secret-123`, transport: 'streamable-http' },
          missing: { command: '/nonexistent/mcp-server' },
        },
      }),
    );
    proxy = await startProxy(
      {
        METRICS_TOKEN,
        ADMIN_TOKEN,
        MCP_PROXY_CONFIG: config,
        EGRESS_DENIED_HOSTS: 'denied.invalid',
      },
      { clock },
    );
  });
  after(async () => {
    await proxy?.close();
    await good?.stop();
    await broken?.stop();
    await legacy?.stop();
  });

  it('does not exist without a metrics or admin token', async () => {
    const plain = await startProxy();
    try {
      assert.equal((await fetch(`${plain.url}/status`)).status, 404);
      assert.equal((await fetch(`${plain.url}/status.json`)).status, 404);
    } finally {
      await plain.close();
    }
  });

  it('serves a page holding no data under a strict CSP', async () => {
    const response = await fetch(`${proxy.url}/status`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[^']+'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /require-trusted-types-for 'script'/);
    const html = await response.text();
    assert.doesNotMatch(html, /src=|href=/, 'no external asset');
    assert.ok(!html.includes(good.url) && !html.includes(METRICS_TOKEN));
  });

  it('wants the metrics token or an admin token, never a plain proxy token', async () => {
    assert.equal((await fetch(`${proxy.url}/status.json`)).status, 401);
    assert.equal((await status(proxy, proxy.token)).status, 401);
    assert.equal((await status(proxy, 'wrong-token-0123456789abcdef')).status, 401);
    assert.equal((await status(proxy, METRICS_TOKEN)).status, 200);
    assert.equal((await status(proxy, ADMIN_TOKEN)).status, 200);
  });

  it('counts requests, errors by code, upstream latency and health per host', async () => {
    const before = (await status(proxy)).body;
    for (let id = 1; id <= 3; id++) {
      const reply = await postProxy(proxy, { ...initialize(good.url, id), server: undefined });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
    }
    const failed = await postProxy(proxy, { ...initialize('x'), mcp_server_url: undefined, server: 'keyed' });
    assert.ok(failed.status >= 500, JSON.stringify(failed.body));
    const refused = await postProxy(proxy, initialize('http://denied.invalid/mcp?key=refused-secret-456'));
    assert.equal(refused.status, 403);

    const after = (await status(proxy)).body;
    // Exactly the five calls: reading the status itself is not counted.
    assert.equal(after.requests.total, before.requests.total + 5);
    assert.ok(after.requests.byRoute['/proxy'] >= 5);
    assert.equal(after.requests.errorsByCode.target_forbidden, 1);
    assert.ok(after.requests.errors >= 2);

    const goodHost = new URL(good.url).host;
    const up = after.upstreams.find((u: { host: string }) => u.host === goodHost);
    assert.deepEqual(up.servers, ['good']);
    assert.equal(up.health, 'up');
    assert.equal(up.calls, 3);
    assert.equal(up.window.count, 3);
    assert.ok(up.window.p50 > 0 && up.window.p99 >= up.window.p50, JSON.stringify(up.window));
    assert.equal(up.lastOkAt, clock.now());

    const down = after.upstreams.find((u: { host: string }) => u.host === new URL(broken.url).host);
    assert.deepEqual(down.servers, ['keyed']);
    assert.equal(down.health, 'failing');
    assert.equal(down.lastError, 'http_500');

    assert.equal(after.egressRefusals.total, 1);
    assert.deepEqual(after.egressRefusals.recent[0], {
      at: clock.now(),
      host: 'denied.invalid',
      reason: 'host_forbidden',
    });

    const text = JSON.stringify(after);
    for (const secret of ['configured-secret-123', 'refused-secret-456', '/mcp', METRICS_TOKEN, proxy.token])
      assert.ok(!text.includes(secret), `${secret} in the snapshot`);
  });

  it('shows a stdio server that cannot start as failing', async () => {
    const reply = await postProxy(proxy, { server: 'missing', jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(reply.status, 502);
    const stdio = (await status(proxy)).body.upstreams.find(
      (u: { host: string }) => u.host === 'stdio:missing',
    );
    assert.deepEqual(
      [stdio.servers, stdio.health, stdio.calls, stdio.errors, stdio.lastError],
      [['missing'], 'failing', 1, 1, 'upstream_unreachable'],
    );
  });

  it('lists a refusal made when connecting (DNS rebinding after the vetting)', async () => {
    let lookups = 0;
    // The first answer (vetting) is public; every later one (connecting) is loopback: refused.
    const rebinding = await startProxy(
      { METRICS_TOKEN, ALLOW_PRIVATE_NETWORKS: 'false' },
      {
        resolver: async () => [{ address: lookups++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }],
      },
    );
    try {
      const port = new URL(good.url).port;
      const reached = good.received.length;
      const reply = await postProxy(rebinding, {
        ...initialize(`http://rebind.test:${port}/mcp?key=rebind-secret`),
        transport: 'streamable-http',
      });
      assert.equal(reply.status, 403, JSON.stringify(reply.body));
      assert.ok(lookups >= 2, 'refused when connecting, not when vetting');
      const { recent } = (await status(rebinding)).body.egressRefusals;
      assert.deepEqual(
        recent.map((r: { host: string; reason: string }) => [r.host, r.reason]),
        [[`rebind.test:${port}`, 'address_forbidden']],
      );
      assert.equal(good.received.length, reached, 'nothing reached the upstream');
    } finally {
      await rebinding.close();
    }
  });

  it('keeps latency for one to two minutes of the injected clock', async () => {
    const host = new URL(good.url).host;
    const window = async () =>
      (await status(proxy)).body.upstreams.find((u: { host: string }) => u.host === host).window;
    await postProxy(proxy, initialize(good.url, 9));
    const now = await window();
    assert.ok(now.count >= 1);
    clock.advance(61_000);
    assert.equal((await window()).count, now.count, 'the previous minute still counts');
    clock.advance(61_000);
    assert.deepEqual(await window(), { count: 0, p50: null, p90: null, p99: null });
  });

  it('counts held sessions by upstream transport on this instance', async () => {
    const opened = await postProxy(proxy, { ...initialize(legacy.url), transport: 'sse' });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    const body = (await status(proxy)).body;
    assert.equal(body.sessions.byTransport.sse, 1);
    assert.equal(body.sessions.webSockets, 0);
    assert.equal(typeof body.sessions.instance, 'string');
    assert.equal(body.sessions.instance, body.instance.id);
  });
});
