/**
 * One caller's traffic must not change the route another caller's messages take to the same
 * upstream for the worse: a sessionless GET on `/mcp` to an HTTP+SSE (2024-11-05) server is
 * answered 200 `text/event-stream`, exactly as a Streamable HTTP server would, so it proves
 * nothing about the transport and must not be remembered as "Streamable HTTP" (which would skip
 * the SSE fallback for every caller of that URL for the verdict's lifetime).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const VICTIM = 'victim-token-0123456789abcdef0000';
const ATTACKER = 'attacker-token-0123456789abcdef00';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'victim', version: '1' } },
} as const;

describe('transport verdicts are learnt only from what proves them', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  let dir: string;

  before(async () => {
    upstream = await startEverything('sse');
    dir = mkdtempSync(join(tmpdir(), 'verdict-poisoning-'));
    const file = join(dir, 'proxy.yaml');
    writeFileSync(
      file,
      [
        'servers:',
        '  legacy:',
        `    url: ${upstream.url}`,
        'tokens:',
        `  - sha256: ${sha256(VICTIM)}`,
        '    servers: [legacy]',
        `  - sha256: ${sha256(ATTACKER)}`,
        '    servers: [legacy]',
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: file });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("another token's sessionless GET leaves the SSE fallback to the victim (POST /proxy and /mcp)", async () => {
    const controller = new AbortController();
    const get = await fetch(`${proxy.url}/servers/legacy/mcp`, {
      method: 'GET',
      signal: controller.signal,
      headers: { 'x-proxy-token': ATTACKER, accept: 'text/event-stream' },
    });
    // The HTTP+SSE server's own stream, relayed: the answer that used to teach "Streamable HTTP".
    assert.equal(get.status, 200);
    controller.abort();

    const viaProxy = await postProxy({ url: proxy.url, token: VICTIM }, { server: 'legacy', ...INITIALIZE });
    assert.equal(viaProxy.status, 200, JSON.stringify(viaProxy.body));

    const viaMcp = await fetch(`${proxy.url}/servers/legacy/mcp`, {
      method: 'POST',
      headers: {
        'x-proxy-token': VICTIM,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(INITIALIZE),
    });
    assert.equal(viaMcp.status, 200, await viaMcp.clone().text());
    assert.match(viaMcp.headers.get('mcp-session-id') ?? '', /^mcpp-/, 'a proxy-held SSE session');
    await viaMcp.body?.cancel();
  });
});
