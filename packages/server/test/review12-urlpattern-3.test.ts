/**
 * Review 12 (second review of fix-last-2's URL patterns) URLPATTERN-3 (lockout): patterns are
 * normalised so that "the path is percent-encoded" (docs/identity.md: `/café/**` is
 * `/caf%C3%A9/**`), but a percent-escape already in the pattern or in the target is kept as
 * written, hex case included (policy/url-pattern-normal.ts, policy/url-pattern.ts `matchedForm`).
 * `%c3%a9` and `%C3%A9` are the same octets (RFC 3986 §6.2.2.1) and the same URL to any upstream,
 * yet a pattern written `/caf%c3%a9/**` does not reach `/café/mcp` (nor `/caf%C3%A9/mcp`), and a
 * pattern `/café/**` does not reach a target the caller spelt `/caf%c3%a9/mcp`: `403
 * forbidden_server` for the URL the grant names. Both sides should read percent-escapes alike
 * (e.g. hex digits uppercased in the matched form and the normal pattern).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'review12-urlpattern-3-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** The statuses of pings to `targets` by a token granted `pattern` (nothing listens there). */
async function statusesFor(pattern: string, targets: readonly string[]): Promise<number[]> {
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review12-urlpattern-3-')), 'proxy.json');
  writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls: [pattern] }] }));
  const proxy = await startProxy({ MCP_PROXY_CONFIG: configPath });
  try {
    const statuses: number[] = [];
    for (const target of targets) {
      const reply = await postProxy(
        { url: proxy.url, token: CALLER },
        { mcp_server_url: target, jsonrpc: '2.0', id: 1, method: 'ping' },
      );
      if (reply.status === 403) assert.equal(reply.body.error.data.code, 'forbidden_server');
      statuses.push(reply.status);
    }
    return statuses;
  } finally {
    await proxy.close();
  }
}

describe('review12 URLPATTERN-3: percent-escapes are read alike in patterns and targets', () => {
  it('a pattern with lowercase escapes reaches the URL it spells, in either spelling', async () => {
    const base = `http://127.0.0.1:${await freePort()}`;
    const statuses = await statusesFor(`${base}/caf%c3%a9/**`, [`${base}/café/mcp`, `${base}/caf%C3%A9/mcp`]);
    assert.deepEqual(
      statuses.map((status) => status === 403),
      [false, false],
      `statuses ${statuses.join(', ')}: the pattern names these very URLs`,
    );
  });

  it('a pattern with a non-ASCII segment reaches that segment spelt with lowercase escapes', async () => {
    const base = `http://127.0.0.1:${await freePort()}`;
    const [status] = await statusesFor(`${base}/café/**`, [`${base}/caf%c3%a9/mcp`]);
    assert.notEqual(status, 403, 'the pattern names this very URL');
  });
});
