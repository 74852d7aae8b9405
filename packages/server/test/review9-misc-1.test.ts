/**
 * Review 9 (misc) finding 1: a virtual server's 2025-era client session id sealed under a
 * previous SESSION_SECRET opens (virtual/client-sessions.ts `#unsealed`, line 69) but is never
 * handed back re-sealed: `open` drops the sealer's `resealed`/`sealedId` and virtual-handler.ts
 * `sessionOf` sets no `mcp-session-id` on the answer. docs/configuration.md
 * (SESSION_SECRET_PREVIOUS) promises "ids sealed under them still open and are handed back
 * re-sealed under SESSION_SECRET ... each use moves a session to the new secret", as named
 * servers' /mcp sessions do (surfaces/mcp/endpoint.ts, passthrough.ts). So once the operator
 * drops the old secret, every virtual session, however busy, is 404 and must initialize again.
 * Real parts: the proxy (started twice: before and during the rotation) and plain HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const OLD = 'review9-misc-1-old-session-secret-0123456789';
const NEW = 'review9-misc-1-new-session-secret-0123456789';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

const headers = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'x-proxy-token': TEST_TOKEN,
};

describe('review9 misc 1: a virtual session id under the previous SESSION_SECRET', () => {
  it('is handed back re-sealed under the new secret, as SESSION_SECRET_PREVIOUS promises', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'review9-misc-1-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    // The member is never reached: ping is the virtual server's own answer.
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: { files: { url: 'http://127.0.0.1:9/mcp', transport: 'streamable-http' } },
        virtualServers: { workspace: { servers: ['files'] } },
      }),
    );
    const config = join(dir, 'proxy.json');
    const before = await startProxy({ MCP_PROXY_CONFIG: config, SESSION_SECRET: OLD });
    cleanup.push(() => before.close());
    const initialized = await fetch(`${before.url}/servers/workspace/mcp`, {
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
    const old = initialized.headers.get('mcp-session-id') ?? '';
    assert.match(old, /^mcpp2\./, 'a sealed session id');

    // The rotation's first step: a new secret, the old one still listed.
    const during = await startProxy({
      MCP_PROXY_CONFIG: config,
      SESSION_SECRET: NEW,
      SESSION_SECRET_PREVIOUS: OLD,
    });
    cleanup.push(() => during.close());
    const used = await fetch(`${during.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': old },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
    });
    await used.body?.cancel();
    assert.equal(used.status, 200, 'the old secret still opens it');
    const moved = used.headers.get('mcp-session-id');
    assert.ok(
      moved !== null && moved !== old,
      `the session in use was not handed back under the new secret (mcp-session-id: ${moved})`,
    );

    // Once the old secret is dropped, the moved session goes on.
    const afterRotation = await startProxy({ MCP_PROXY_CONFIG: config, SESSION_SECRET: NEW });
    cleanup.push(() => afterRotation.close());
    const later = await fetch(`${afterRotation.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': moved },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }),
    });
    await later.body?.cancel();
    assert.equal(later.status, 200, 'the re-sealed id opens under the new secret alone');
  });
});
