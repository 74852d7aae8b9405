/**
 * Review 11 (matcher correctness) URLPATTERN-3: a URL pattern is matched as written, but the
 * target is matched as parsed (policy/url-pattern.ts `urlMatches`: `protocol//host pathname`,
 * the default port dropped, non-ASCII path characters percent-encoded, an IDN host in punycode).
 * The config accepts a pattern that spells its target the way an operator types it
 * (config/schemas.ts `urlPattern`), and that pattern then matches not even the URL it spells:
 * `http://127.0.0.1:80/**` does not reach `http://127.0.0.1:80/mcp`, nor
 * `http://127.0.0.1:<port>/café/**` reach `http://127.0.0.1:<port>/café/mcp`: the token is
 * locked out with `403 forbidden_server`. Either the pattern is normalised as the target is, or
 * the config refuses it (then loading it throws, which this test also accepts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'review11-urlpattern-3-caller-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** The answer to a ping sent to `target` by a token granted `pattern`; undefined: config refused. */
async function statusFor(pattern: string, target: string): Promise<number | undefined> {
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-review11-urlpattern-3-')), 'proxy.json');
  writeFileSync(configPath, JSON.stringify({ tokens: [{ sha256: sha256(CALLER), urls: [pattern] }] }));
  const proxy = await startProxy({ MCP_PROXY_CONFIG: configPath }).catch(() => undefined);
  if (proxy === undefined) return undefined;
  try {
    const reply = await postProxy(
      { url: proxy.url, token: CALLER },
      { mcp_server_url: target, jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    if (reply.status === 403) assert.equal(reply.body.error.data.code, 'forbidden_server');
    return reply.status;
  } finally {
    await proxy.close();
  }
}

describe('review11 URLPATTERN-3: a pattern reaches the URL it spells', () => {
  it('a pattern naming the default port reaches that URL', async () => {
    const status = await statusFor('http://127.0.0.1:80/**', 'http://127.0.0.1:80/mcp');
    assert.notEqual(status, 403, 'the pattern names this very URL');
  });

  it('a pattern with a non-ASCII path segment reaches that URL', async () => {
    const port = await freePort();
    const status = await statusFor(`http://127.0.0.1:${port}/café/**`, `http://127.0.0.1:${port}/café/mcp`);
    assert.notEqual(status, 403, 'the pattern names this very URL');
  });
});
