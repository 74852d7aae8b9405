/**
 * A virtual server's 2025-era client sessions in the shared store: ids re-sealed under a rotated
 * SESSION_SECRET, bounded "ended" marks per principal, and 503 store_unavailable when the store is
 * down.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { MemoryStore } from '../src/store/memory-store.ts';
import { ENDS_PER_PRINCIPAL } from '../src/virtual/client-sessions.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { ADMIN, keyFile, mint, revoke } from './helpers/minted.ts';
import { startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { startRedis } from './helpers/redis.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const headers = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'x-proxy-token': TEST_TOKEN,
};

/**
 * A configuration whose virtual server `workspace` has one member, never reached (what is asked
 * here is the virtual server's own answer); returns its path, removed after the test.
 */
function workspaceConfig(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'proxy.json'),
    JSON.stringify({
      servers: { files: { url: 'http://127.0.0.1:9/mcp', transport: 'streamable-http' } },
      virtualServers: { workspace: { servers: ['files'] } },
    }),
  );
  return join(dir, 'proxy.json');
}

/** Opens a 2025-era session of `workspace` on the proxy at `proxyUrl`; its body is discarded. */
async function initialize(proxyUrl: string, id: number): Promise<Response> {
  const initialized = await fetch(`${proxyUrl}/servers/workspace/mcp`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    }),
  });
  await initialized.body?.cancel();
  return initialized;
}

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
describe('review9 misc 1: a virtual session id under the previous SESSION_SECRET', () => {
  const OLD = 'review9-misc-1-old-session-secret-0123456789';
  const NEW = 'review9-misc-1-new-session-secret-0123456789';

  it('is handed back re-sealed under the new secret, as SESSION_SECRET_PREVIOUS promises', async () => {
    const config = workspaceConfig('review9-misc-1-');
    const before = await startProxy({ MCP_PROXY_CONFIG: config, SESSION_SECRET: OLD });
    cleanup.push(() => before.close());
    const initialized = await initialize(before.url, 1);
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

/**
 * Review 9 (misc) finding 2: every DELETE of a virtual server's 2025-era client session leaves an
 * "ended" mark in the shared store for the rest of the id's 24 h (virtual/client-sessions.ts
 * `end`, line 61), one per session, and a principal may open and end sessions as fast as its rate
 * limit lets it (RATE_LIMIT_PER_TOKEN 1200/min: ~600 marks a minute, ~864 000 a day, from one
 * principal). Nothing bounds the marks per principal. With STORE=memory the store holds 100 000
 * live keys and never drops a live one (it may be a revocation): one principal's session churn
 * fills it within hours, and for the next day the admin's mints and revocations are refused
 * (503 store_full); with SQLite or Redis the marks are rows and memory that grow alike.
 * Here the store is given room for a few keys more than the marks one principal may now leave
 * (ENDS_PER_PRINCIPAL; as revocation-gaps.test.ts does) so the churn that fills it is short; the
 * proportion is the same.
 * Control: the same loop with GET instead of DELETE (no marks) passes; with DELETE and no bound
 * the revocation is refused 503 (store_full). Fixed: the DELETEs past the bound are 429.
 * Real parts: the proxy with a small in-process store, plain HTTP.
 */
describe('review9 misc 2: ended virtual sessions in the shared store', () => {
  it("one principal's session churn does not crowd the admin's mints and revocations out", async () => {
    const config = workspaceConfig('review9-misc-2-');
    const clock = new ManualClock();
    // Room for the bound's marks and 8 keys more: the proxy keeps two itself (heartbeat,
    // sealing key), a mint and a revocation take one each.
    const proxy = await startProxy(
      { MCP_PROXY_CONFIG: config, ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile() },
      { clock, store: new MemoryStore(clock, ENDS_PER_PRINCIPAL + 8) },
    );
    cleanup.push(() => proxy.close());

    // A principal opens and ends 2025-era sessions, well within its rate limit.
    const statuses: number[] = [];
    for (let i = 0; i < ENDS_PER_PRINCIPAL + 20; i++) {
      const initialized = await initialize(proxy.url, i);
      const ended = await fetch(`${proxy.url}/servers/workspace/mcp`, {
        method: 'DELETE',
        headers: {
          'x-proxy-token': TEST_TOKEN,
          'mcp-session-id': initialized.headers.get('mcp-session-id') ?? '',
        },
      });
      await ended.body?.cancel();
      statuses.push(ended.status);
    }
    assert.ok(statuses.includes(204), `the sessions were ended: ${statuses.join(',')}`);

    // An hour later (the marks still live for 23 more), the admin mints and revokes a token.
    clock.advance(60 * 60_000);
    const minted = await mint(proxy.url, 'alice').catch((error: unknown) => error as Error);
    assert.ok(
      !(minted instanceof Error),
      `another principal's ended sessions filled the store: the admin cannot mint (${String(minted)})`,
    );
    assert.equal(await revoke(proxy.url, minted.id), 204, 'nor revoke');
    assert.deepEqual(
      [...new Set(statuses.slice(ENDS_PER_PRINCIPAL))],
      [429],
      'the DELETEs past the bound are refused rate_limited',
    );
  });
});

/**
 * Review 9 (misc) finding 3: the session check of a virtual server's 2025-era client reads the
 * shared store directly (virtual/client-sessions.ts `open`, line 53: `store.get`; `end`, line 62:
 * `store.setIfAbsent`), not through store.ts `storeRead`/`storeError`. With Redis unreachable the
 * store's own error escapes: the client gets a 500 internal error instead of the registry's
 * 503 `store_unavailable` every other store read gives (a client retries a 503; a 500 says the
 * proxy is broken). It fails closed, which is right; the code is wrong.
 * Real parts: redis-server (stopped mid-test) and the proxy, plain HTTP.
 */
describe('review9 misc 3: the store down under a 2025-era virtual session', () => {
  it('answers 503 store_unavailable (not a 500) to a request and to a DELETE', async () => {
    const config = workspaceConfig('review9-misc-3-');
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const proxy = await startProxy({
      MCP_PROXY_CONFIG: config,
      REDIS_URL: redis.url,
      SESSION_SECRET: 'review9-misc-3-session-secret-0123456789',
    });
    cleanup.push(() => proxy.close());
    const initialized = await initialize(proxy.url, 1);
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
