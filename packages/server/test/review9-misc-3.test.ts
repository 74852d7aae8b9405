/**
 * Review 9 (misc) finding 3: the session check of a virtual server's 2025-era client reads the
 * shared store directly (virtual/client-sessions.ts `open`, line 53: `store.get`; `end`, line 62:
 * `store.setIfAbsent`), not through store.ts `storeRead`/`storeError`. With Redis unreachable the
 * store's own error escapes: the client gets a 500 internal error instead of the registry's
 * 503 `store_unavailable` every other store read gives (a client retries a 503; a 500 says the
 * proxy is broken). It fails closed, which is right; the code is wrong.
 * Real parts: redis-server (stopped mid-test) and the proxy, plain HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

const headers = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'x-proxy-token': TEST_TOKEN,
};

describe('review9 misc 3: the store down under a 2025-era virtual session', () => {
  it('answers 503 store_unavailable (not a 500) to a request and to a DELETE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'review9-misc-3-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: { files: { url: 'http://127.0.0.1:9/mcp', transport: 'streamable-http' } },
        virtualServers: { workspace: { servers: ['files'] } },
      }),
    );
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const proxy = await startProxy({
      MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      REDIS_URL: redis.url,
      SESSION_SECRET: 'review9-misc-3-session-secret-0123456789',
    });
    cleanup.push(() => proxy.close());
    const initialized = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    await initialized.body?.cancel();
    const session = initialized.headers.get('mcp-session-id') ?? '';
    assert.match(session, /^mcpp2\./);

    await redis.stop();
    const ping = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': session },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
    });
    const pinged = await ping.text();
    const ended = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'DELETE',
      headers: { 'x-proxy-token': TEST_TOKEN, 'mcp-session-id': session },
    });
    const deleted = await ended.text();
    assert.deepEqual(
      [ping.status, ended.status],
      [503, 503],
      `POST: ${ping.status} ${pinged}; DELETE: ${ended.status} ${deleted}`,
    );
    assert.match(pinged, /store_unavailable/);
    assert.match(deleted, /store_unavailable/);
  });
});
