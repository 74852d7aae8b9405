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

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

const headers = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'x-proxy-token': TEST_TOKEN,
};

describe('review9 misc 2: ended virtual sessions in the shared store', () => {
  it("one principal's session churn does not crowd the admin's mints and revocations out", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'review9-misc-2-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      join(dir, 'proxy.json'),
      JSON.stringify({
        servers: { files: { url: 'http://127.0.0.1:9/mcp', transport: 'streamable-http' } },
        virtualServers: { workspace: { servers: ['files'] } },
      }),
    );
    const clock = new ManualClock();
    // Room for the bound's marks and 8 keys more: the proxy keeps two itself (heartbeat,
    // sealing key), a mint and a revocation take one each.
    const proxy = await startProxy(
      { MCP_PROXY_CONFIG: join(dir, 'proxy.json'), ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile() },
      { clock, store: new MemoryStore(clock, ENDS_PER_PRINCIPAL + 8) },
    );
    cleanup.push(() => proxy.close());

    // A principal opens and ends 2025-era sessions, well within its rate limit.
    const statuses: number[] = [];
    for (let i = 0; i < ENDS_PER_PRINCIPAL + 20; i++) {
      const initialized = await fetch(`${proxy.url}/servers/workspace/mcp`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: i,
          method: 'initialize',
          params: {
            protocolVersion: '2025-11-25',
            capabilities: {},
            clientInfo: { name: 't', version: '1' },
          },
        }),
      });
      await initialized.body?.cancel();
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
