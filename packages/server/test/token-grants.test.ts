import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { type MisbehavingUpstream, startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const RESTRICTED = 'restricted-token-0123456789abcdef';
const FILE_ONLY = 'file-only-token-0123456789abcdef';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

function configFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-grants-')), 'proxy.yaml');
  writeFileSync(path, text);
  return path;
}

describe('token grants from the config file', () => {
  let upstream: MisbehavingUpstream;
  let proxy: RunningProxy;
  let file = '';
  before(async () => {
    upstream = await startMisbehaving();
    file = configFile(
      [
        'servers:',
        '  echo:',
        `    url: ${upstream.origin}/echo-auth`,
        '  other:',
        `    url: ${upstream.origin}/echo-headers`,
        'tokens:',
        `  - sha256: ${sha256(RESTRICTED)}`,
        '    name: frontend',
        '    servers: [echo]',
        `  - sha256: ${sha256(FILE_ONLY).toUpperCase()}`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: file });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  const call = (token: string, target: Record<string, string>) =>
    postProxy({ url: proxy.url, token }, { ...target, jsonrpc: '2.0', id: 1, method: 'ping' });

  it('accepts tokens the file names only by their SHA-256', async () => {
    assert.equal((await call(FILE_ONLY, { server: 'other' })).status, 200);
    assert.equal((await call(RESTRICTED, { server: 'echo' })).status, 200);
    assert.equal((await call(`${FILE_ONLY}x`, { server: 'other' })).status, 401);
  });

  it('keeps a restricted token to its servers: other names look unknown, raw URLs are refused', async () => {
    const other = await call(RESTRICTED, { server: 'other' });
    assert.equal(other.status, 404);
    assert.equal(other.body.error.data.code, 'unknown_server');
    const raw = await call(RESTRICTED, { mcp_server_url: `${upstream.origin}/echo-auth` });
    assert.equal(raw.status, 403);
    assert.equal(raw.body.error.data.reason, 'not_in_allowlist');
    const viaMcp = await fetch(`${proxy.url}/servers/other/mcp`, {
      method: 'POST',
      headers: {
        'x-proxy-token': RESTRICTED,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    assert.equal(viaMcp.status, 404);
  });

  it('leaves unrestricted tokens free', async () => {
    assert.equal((await call(proxy.token, { mcp_server_url: `${upstream.origin}/echo-auth` })).status, 200);
    assert.equal((await call(proxy.token, { server: 'other' })).status, 200);
  });

  it('refuses a grant naming an unknown server, or a malformed digest', () => {
    assert.throws(
      () =>
        loadConfig({
          env: {},
          configPath: configFile(`tokens:\n  - sha256: ${sha256('x')}\n    servers: [nope]\n`),
        }),
      /tokens\.0\.servers": no server named "nope"/,
    );
    assert.throws(
      () => loadConfig({ env: {}, configPath: configFile('tokens:\n  - sha256: abc\n') }),
      /sha256 must be the 64 hex digits/,
    );
  });
});
