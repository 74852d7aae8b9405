/**
 * Issue 14 review, F5: a stdio server's lines are bounded in bytes (UPSTREAM_RESPONSE_LIMIT_BYTES),
 * counted as bytes, not characters, and a long line split over many chunks arrives whole.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const WIDE = fileURLToPath(new URL('./fixtures/wide-stdio.ts', import.meta.url));
const LIMIT = 1_000_000;

describe('stdio lines are bounded in bytes', () => {
  let proxy: RunningProxy;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-lines-'));
    const configPath = join(dir, 'proxy.yaml');
    writeFileSync(
      configPath,
      [
        'servers:',
        '  wide:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(WIDE)}]`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: configPath, UPSTREAM_RESPONSE_LIMIT_BYTES: String(LIMIT) });
  });
  after(() => proxy?.close());

  const call = (chars: number) =>
    postProxy(proxy, {
      server: 'wide',
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'wide', arguments: { chars } },
    });

  it('relays a line under the limit read over many chunks, multi-byte characters intact', async () => {
    const chars = Math.floor(LIMIT / 3) - 1_000;
    const reply = await call(chars);
    assert.equal(reply.status, 200, JSON.stringify(reply.body).slice(0, 300));
    assert.equal(reply.body.result.content[0].text, '€'.repeat(chars));
  });

  it('refuses a line over the limit in bytes though under it in characters', async () => {
    const reply = await call(Math.floor(LIMIT / 2));
    assert.equal(
      reply.body.error?.data?.code,
      'upstream_response_too_large',
      JSON.stringify(reply.body).slice(0, 300),
    );
  });
});
