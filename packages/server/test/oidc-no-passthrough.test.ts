/**
 * The inbound credential never goes upstream (issue 17 #5; MCP authorization: "token
 * passthrough" is forbidden). An OIDC bearer token the caller authenticated with is not sent to
 * the MCP server on any surface: POST /proxy (by URL and by name), /mcp, /servers/{name}/mcp;
 * and /ws never takes the upgrade's Authorization header upstream either. A header-recording
 * relay in front of a real MCP server sees every request the proxy makes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type ConformanceServer, startConformanceServer } from './fixtures/conformance-server.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'passthrough', version: '1' },
  },
};

/** A relay to `upstreamUrl` that records the Authorization header of every request (or none). */
async function startHeaderRelay(upstreamUrl: string) {
  const target = new URL(upstreamUrl);
  const seen: Array<string | undefined> = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    const out = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      },
    );
    out.once('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${target.pathname}`,
    seen,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('no token passthrough', () => {
  let idp: TestOidcIssuer;
  let upstream: ConformanceServer;
  let relay: Awaited<ReturnType<typeof startHeaderRelay>>;
  let proxy: RunningProxy;

  beforeEach(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    upstream = await startConformanceServer();
    relay = await startHeaderRelay(upstream.url);
    const path = join(mkdtempSync(join(tmpdir(), 'oidc-passthrough-')), 'config.json');
    writeFileSync(
      path,
      JSON.stringify({
        servers: { relayed: { url: relay.url } },
        oidc: { issuers: [{ issuer: idp.issuer, audience: AUDIENCE }] },
      }),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: path, WS_ALLOW_MISSING_ORIGIN: 'true' });
  });
  afterEach(async () => {
    await proxy.close();
    await relay.stop();
    await upstream.stop();
    await idp.stop();
  });

  it('never sends the OIDC bearer token upstream, on POST /proxy, /mcp and /servers/{name}/mcp', async () => {
    const token = await idp.serviceToken();
    const bearer = { authorization: `Bearer ${token}` };
    const json = { 'content-type': 'application/json' };
    const streamable = { ...json, accept: 'application/json, text/event-stream' };
    const calls: Array<[string, string, Record<string, string>, unknown]> = [
      ['POST /proxy by URL', '/proxy', { ...bearer, ...json }, { mcp_server_url: relay.url, ...INITIALIZE }],
      ['POST /proxy by name', '/proxy', { ...bearer, ...json }, { server: 'relayed', ...INITIALIZE }],
      ['/mcp', '/mcp', { ...bearer, ...streamable, 'x-mcp-server-url': relay.url }, INITIALIZE],
      ['/servers/{name}/mcp', '/servers/relayed/mcp', { ...bearer, ...streamable }, INITIALIZE],
    ];
    for (const [what, path, headers, body] of calls) {
      const before = relay.seen.length;
      const response = await fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
      });
      const text = await response.text();
      assert.equal(response.status, 200, `${what}: ${text}`);
      assert.ok(relay.seen.length > before, `${what} reached the upstream`);
      assert.deepEqual(
        relay.seen.slice(before),
        relay.seen.slice(before).map(() => undefined),
        what,
      );
    }
    assert.ok(!relay.seen.some((value) => value?.includes(token)));
  });

  it('still sends an upstream token the caller gives as such (X-MCP-Token)', async () => {
    // The control: the relay does see Authorization when the caller means it for the upstream.
    const token = await idp.serviceToken();
    const response = await fetch(`${proxy.url}/servers/relayed/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'x-mcp-token': 'upstream-token-for-the-mcp-server',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(INITIALIZE),
    });
    assert.equal(response.status, 200, await response.text());
    assert.deepEqual(relay.seen, ['Bearer upstream-token-for-the-mcp-server']);
  });

  it('never takes a /ws upgrade request Authorization header upstream', async () => {
    const ws = new WebSocket(
      `${proxy.url.replace('http', 'ws')}/ws?server=relayed`,
      ['mcp', `proxy-token.${proxy.token}`],
      {
        headers: { authorization: 'Bearer caller-credential-not-for-upstream' },
      },
    );
    const answer = await new Promise<unknown>((resolve, reject) => {
      ws.once('open', () => ws.send(JSON.stringify(INITIALIZE)));
      ws.once('message', (data) => resolve(JSON.parse(String(data))));
      ws.once('error', reject);
      ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason}`)));
    });
    ws.close();
    assert.ok((answer as { result?: unknown }).result, JSON.stringify(answer));
    assert.ok(relay.seen.length > 0);
    assert.deepEqual(
      relay.seen,
      relay.seen.map(() => undefined),
    );
  });
});
