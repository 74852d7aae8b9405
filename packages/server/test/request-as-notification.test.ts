/**
 * Review of issue 17, finding 4: a `tools/call` (or any request method) sent as a notification,
 * without an id, skipped the tool grant and the audit and still ran upstream. No surface forwards
 * one now (/mcp, POST /proxy, /ws); it is audited as refused. The upstream records what arrives.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { type RecordingUpstream, startRecordingUpstream } from './helpers/recording-upstream.ts';

const VERSION = '2025-06-18';
const HIDDEN = { jsonrpc: '2.0', method: 'tools/call', params: { name: 'drop_database', arguments: {} } };
const ALLOWED = { jsonrpc: '2.0', method: 'tools/call', params: { name: 'harmless', arguments: {} } };

describe('a request method sent as a notification never reaches the upstream', () => {
  let upstream: RecordingUpstream;
  let proxy: RunningProxy;
  let auditPath: string;
  before(async () => {
    upstream = await startRecordingUpstream(['harmless', 'drop_database']);
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-notif-'));
    auditPath = join(dir, 'audit.log');
    const config = join(dir, 'proxy.json');
    writeFileSync(
      config,
      JSON.stringify({
        servers: {
          rec: { url: upstream.url, transport: 'streamable-http', tools: ['harmless'] },
          open: { url: upstream.url, transport: 'streamable-http' },
        },
      }),
    );
    proxy = await startProxy({
      MCP_PROXY_CONFIG: config,
      WS_ALLOW_MISSING_ORIGIN: 'true',
      AUDIT_LOG: auditPath,
    });
  });
  after(async () => {
    await proxy?.close();
    await upstream?.stop();
  });

  // biome-ignore lint/suspicious/noExplicitAny: audit lines are arbitrary JSON.
  const auditLines = (): any[] =>
    readFileSync(auditPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));

  async function postMcp(server: string, body: unknown) {
    const response = await fetch(`${proxy.url}/servers/${server}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': proxy.token,
        'mcp-protocol-version': VERSION,
      },
      body: JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  }

  it('/servers/{name}/mcp: alone or in a batch, hidden tool or not', async () => {
    assert.equal((await postMcp('rec', HIDDEN)).status, 202);
    assert.equal((await postMcp('open', ALLOWED)).status, 202);
    const batch = await postMcp('open', [ALLOWED, { jsonrpc: '2.0', id: 7, method: 'ping' }]);
    assert.equal(batch.status, 200);
    assert.deepEqual(
      JSON.parse(batch.text).map((m: { id: number }) => m.id),
      [7],
    );
    assert.deepEqual(upstream.calledTools(), []);
    assert.equal(upstream.count('ping'), 1, 'the rest of the batch went on');
    const lines = auditLines().filter((line) => line.method === 'tools/call');
    assert.deepEqual(
      lines.map((line) => [line.server, line.name, line.outcome]),
      [
        ['rec', 'drop_database', 'forbidden_tool'],
        ['open', 'harmless', 'invalid_message'],
        ['open', 'harmless', 'invalid_message'],
      ],
    );
  });

  it('POST /proxy', async () => {
    const hidden = await postProxy(proxy, { server: 'rec', ...HIDDEN });
    assert.equal(hidden.status, 202);
    const allowed = await postProxy(proxy, { server: 'open', ...ALLOWED });
    assert.equal(allowed.status, 202);
    const answered = await postProxy(proxy, { server: 'open', jsonrpc: '2.0', id: 8, method: 'ping' });
    assert.equal(answered.status, 200);
    assert.deepEqual(upstream.calledTools(), []);
  });

  it('/ws', async () => {
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=rec`, [
      'mcp',
      `proxy-token.${proxy.token}`,
    ]);
    const frames: Array<{ id?: number }> = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    try {
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } },
        }),
      );
      await eventually(() => frames.some((frame) => frame.id === 1));
      ws.send(JSON.stringify(HIDDEN));
      ws.send(JSON.stringify(ALLOWED));
      ws.send(JSON.stringify([{ ...HIDDEN }, { jsonrpc: '2.0', id: 2, method: 'ping' }]));
      await eventually(() => frames.some((frame) => frame.id === 2));
      assert.deepEqual(upstream.calledTools(), []);
      assert.deepEqual(
        frames.map((frame) => frame.id),
        [1, 2],
        'a dropped notification gets no answer',
      );
    } finally {
      ws.close();
    }
  });
});
