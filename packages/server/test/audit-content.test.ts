/**
 * Review of issue 17, finding 12: what audit lines copy from caller input. A resource URI's user
 * info is a credential (`https://bob:hunter2@…`) and never reaches a line; a method, name or
 * subject of any length is cut to a bounded field (a 200 KB method made a 200 KB line).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';

describe('audit lines bound what they copy from callers', () => {
  let upstream: RecordingUpstream;
  let proxy: RunningProxy;
  const lines: string[] = [];
  before(async () => {
    upstream = await startRecordingUpstream([]);
    const config = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-audit-')), 'proxy.json');
    writeFileSync(
      config,
      JSON.stringify({ servers: { rec: { url: upstream.url, transport: 'streamable-http' } } }),
    );
    proxy = await startProxy(
      { MCP_PROXY_CONFIG: config },
      { auditDestination: { write: (line: string) => lines.push(line) } },
    );
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  async function send(body: unknown): Promise<number> {
    const response = await fetch(`${proxy.url}/servers/rec/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': proxy.token,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify(body),
    });
    await response.arrayBuffer();
    return response.status;
  }

  it('drops a resource URI’s user info, query and fragment', async () => {
    await send({
      jsonrpc: '2.0',
      id: 1,
      method: 'resources/read',
      params: { uri: 'https://bob:hunter2@files.example/doc?sig=abc#frag' },
    });
    const line = await eventually(() => lines.find((l) => l.includes('"resources/read"')));
    assert.doesNotMatch(line, /hunter2|bob|sig=abc|frag/);
    assert.equal(JSON.parse(line).name, 'https://files.example/doc');
  });

  it('cuts a huge method and name to a bounded field', async () => {
    const method = 'm'.repeat(200_000);
    await send({ jsonrpc: '2.0', id: 2, method, params: { name: 'n'.repeat(100_000) } });
    const line = await eventually(() => lines.find((l) => l.includes('"mmmm')));
    assert.ok(line.length < 2_000, `an audit line of ${line.length} characters`);
    const record = JSON.parse(line);
    assert.equal(record.method, 'm'.repeat(256));
    assert.equal(record.name, 'n'.repeat(256));
  });
});
