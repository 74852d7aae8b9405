/**
 * Who may revoke a minted token (issue 17 review): the admin that minted it, or an admin limited
 * to nothing (ADMIN_TOKEN, or a config admin token without servers, urls, tools or rateClass);
 * another limited admin is refused (403), and an id no token was minted with is 404, not a record
 * kept for 24 h. A rate class limits an admin too (session 8, gap 4): its tokens all carry it, so
 * admins that differ only by class are two tenants' (two plans' apps), and neither may revoke the
 * other's tokens.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ADMIN, keyFile, mintRaw, revoke } from './helpers/minted.ts';
import { startProxy } from './helpers/proxy.ts';

const TEAM_A = 'team-a-admin-token-0123456789abcdef';
const TEAM_B = 'team-b-admin-token-0123456789abcdef';
const FREE = 'free-plan-admin-token-0123456789abcdef';
const PAID = 'paid-plan-admin-token-0123456789abcdef';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Starts a proxy with ADMIN_TOKEN, the servers `a` and `b`, and the config file's `lines`. */
function startWithConfig(lines: readonly string[]) {
  const configPath = join(mkdtempSync(join(tmpdir(), 'mcpp-authority-')), 'proxy.yaml');
  const servers = [
    'servers:',
    '  a:',
    '    url: http://127.0.0.1:9/mcp',
    '  b:',
    '    url: http://127.0.0.1:9/mcp',
  ];
  writeFileSync(configPath, [...servers, ...lines, ''].join('\n'));
  return startProxy({ ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile(), MCP_PROXY_CONFIG: configPath });
}

describe('revoking a minted token', () => {
  it('is for the admin that minted it or an unrestricted admin; an unknown id is 404', async () => {
    const proxy = await startWithConfig([
      'tokens:',
      `  - sha256: ${sha256(TEAM_A)}`,
      '    servers: [a]',
      '    admin: true',
      `  - sha256: ${sha256(TEAM_B)}`,
      '    servers: [b]',
      '    admin: true',
    ]);
    try {
      const byA = await mintRaw(proxy.url, { subject: 'alice' }, TEAM_A);
      assert.equal(byA.status, 201);
      assert.equal(await revoke(proxy.url, byA.body.id, TEAM_B), 403, 'another team cannot revoke it');
      assert.equal(await revoke(proxy.url, byA.body.id, TEAM_A), 204, 'its minter can');

      const again = await mintRaw(proxy.url, { subject: 'bob' }, TEAM_A);
      assert.equal(await revoke(proxy.url, again.body.id, ADMIN), 204, 'an unrestricted admin can');

      const byAdmin = await mintRaw(proxy.url, { subject: 'carol' }, ADMIN);
      assert.equal(
        await revoke(proxy.url, byAdmin.body.id, TEAM_A),
        403,
        'a limited admin cannot revoke the unrestricted one’s',
      );

      const response = await fetch(`${proxy.url}/auth/tokens/AAAAAAAAAAAAAAAAAAAAAA`, {
        method: 'DELETE',
        headers: { 'x-proxy-token': ADMIN },
      });
      assert.equal(response.status, 404);
      const body = (await response.json()) as { error: { data: { code: string } } };
      assert.equal(body.error.data.code, 'token_not_found');
    } finally {
      await proxy.close();
    }
  });

  it('is refused to an admin limited only by its rate class, for another admin’s tokens', async () => {
    const proxy = await startWithConfig([
      'rateClasses:',
      '  free:',
      '    requestsPerWindow: 100',
      '  paid:',
      '    requestsPerWindow: 10000',
      'tokens:',
      `  - sha256: ${sha256(FREE)}`,
      '    rateClass: free',
      '    admin: true',
      `  - sha256: ${sha256(PAID)}`,
      '    rateClass: paid',
      '    admin: true',
    ]);
    try {
      const byPaid = await mintRaw(proxy.url, { subject: 'alice' }, PAID);
      assert.equal(byPaid.status, 201);
      assert.equal(await revoke(proxy.url, byPaid.body.id, FREE), 403, 'the other plan’s admin cannot');
      const byFree = await mintRaw(proxy.url, { subject: 'bob' }, FREE);
      assert.equal(await revoke(proxy.url, byFree.body.id, PAID), 403, 'nor the other way round');
      assert.equal(await revoke(proxy.url, byFree.body.id, FREE), 204, 'its minter can');
      assert.equal(await revoke(proxy.url, byPaid.body.id, ADMIN), 204, 'an unrestricted admin can');
    } finally {
      await proxy.close();
    }
  });
});
