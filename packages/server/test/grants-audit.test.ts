/**
 * Issue 17: per-principal grants (servers, URL patterns, tools, rate class) on every surface,
 * and the audit trail they and every call leave (AUDIT_LOG), through HTTP and WebSocket only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { openAuditSink } from '../src/identity/audit-sink.ts';
import { eventually } from './helpers/eventually.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { ADMIN, keyFile, mint } from './helpers/minted.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const NARROW = 'narrow-token-0123456789abcdef-xyz';
const PATTERNED = 'patterned-token-0123456789abcdef-q';
const TIGHT = 'tight-token-0123456789abcdef-qqqq';
const WIDE_HOSTS = 'wide-hosts-token-0123456789abcdef';
const SECRET_ARG = 'secret-argument-value-7f3a9c';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

const INIT = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

interface AuditLine {
  time: string;
  requestId: string;
  surface: string;
  subject: string;
  auth: string;
  principal: string;
  server: string | null;
  method: string | null;
  name: string | null;
  rpcId?: string | number;
  outcome: string | number;
  durationMs: number;
  arguments?: unknown;
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

describe('per-principal grants and the audit trail', () => {
  let streamable: EverythingServer;
  let sse: EverythingServer;
  let proxy: RunningProxy;
  let auditPath = '';
  const wsUrl = () => proxy.url.replace('http', 'ws');

  before(async () => {
    streamable = await startEverything('streamableHttp');
    sse = await startEverything('sse');
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-audit-'));
    auditPath = join(dir, 'audit.log');
    const config = join(dir, 'proxy.yaml');
    writeFileSync(
      config,
      [
        'servers:',
        '  direct:',
        `    url: ${streamable.url}`,
        '  legacy:',
        `    url: ${sse.url}`,
        '  hidden:',
        `    url: ${streamable.url}`,
        'rateClasses:',
        '  tight:',
        '    requestsPerWindow: 3',
        'tokens:',
        `  - sha256: ${sha256(NARROW)}`,
        '    name: alice-app',
        '    servers: [direct, legacy]',
        '    tools: [echo]',
        `  - sha256: ${sha256(PATTERNED)}`,
        '    name: patterned',
        `    urls: ['http://127.0.0.1:*/mcp']`,
        `  - sha256: ${sha256(WIDE_HOSTS)}`,
        `    urls: ['http://**.example.test/mcp']`,
        `  - sha256: ${sha256(TIGHT)}`,
        '    rateClass: tight',
        '',
      ].join('\n'),
    );
    proxy = await startProxy({
      HOST: '127.0.0.1',
      MCP_PROXY_CONFIG: config,
      WS_ALLOW_MISSING_ORIGIN: 'true',
      AUDIT_LOG: auditPath,
    });
  });
  after(async () => {
    await proxy?.close();
    await streamable?.stop();
    await sse?.stop();
  });

  const auditLines = (): AuditLine[] =>
    readFileSync(auditPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as AuditLine);
  /** Waits for an audit line that matches. */
  const lineWhere = async (what: string, match: (line: AuditLine) => boolean): Promise<AuditLine> => {
    let found: AuditLine | undefined;
    await eventually(
      () => {
        try {
          found = auditLines().find(match);
        } catch {
          found = undefined;
        }
        return found !== undefined;
      },
      { timeoutMs: 5_000, what },
    );
    return found as AuditLine;
  };

  it('POST /proxy: grants narrow the tools, hide unnamed servers and refuse raw URLs (403)', async () => {
    const narrow = { url: proxy.url, token: NARROW };
    const init = await postProxy(narrow, { server: 'direct', ...INIT });
    assert.equal(init.status, 200);
    const headers = { 'mcp-session-id': init.headers.get('mcp-session-id') ?? '' };
    const list = await postProxy(
      narrow,
      { server: 'direct', jsonrpc: '2.0', id: 1, method: 'tools/list' },
      headers,
    );
    assert.deepEqual(
      list.body.result.tools.map((t: { name: string }) => t.name),
      ['echo'],
    );
    const hidden = await postProxy(
      narrow,
      {
        server: 'direct',
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'get-sum', arguments: { a: 1, b: 2 } },
      },
      headers,
    );
    assert.equal(hidden.status, 200);
    assert.equal(hidden.body.error.code, -32602);
    assert.match(hidden.body.error.message, /Unknown tool: get-sum/);
    const echo = await postProxy(
      narrow,
      {
        server: 'direct',
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: SECRET_ARG } },
      },
      headers,
    );
    assert.equal(echo.body.result.content[0].text, `Echo: ${SECRET_ARG}`);
    // The unrestricted token still sees every tool of the same server.
    const fullInit = await postProxy(proxy, { server: 'direct', ...INIT });
    const full = await postProxy(
      proxy,
      { server: 'direct', jsonrpc: '2.0', id: 4, method: 'tools/list' },
      { 'mcp-session-id': fullInit.headers.get('mcp-session-id') ?? '' },
    );
    assert.ok(full.body.result.tools.length > 1);

    const raw = await postProxy(narrow, { mcp_server_url: streamable.url, ...INIT });
    assert.equal(raw.status, 403);
    assert.equal(raw.body.error.data.code, 'forbidden_server');
    assert.equal(raw.body.error.code, -33140);
    const unnamed = await postProxy(narrow, { server: 'hidden', jsonrpc: '2.0', id: 5, method: 'ping' });
    assert.equal(unnamed.status, 404);
    assert.equal(unnamed.body.error.data.code, 'unknown_server');

    const refusedTool = await lineWhere(
      'the hidden tool call',
      (l) => l.surface === 'proxy' && l.name === 'get-sum',
    );
    assert.equal(refusedTool.outcome, 'forbidden_tool');
    assert.equal(refusedTool.subject, 'alice-app');
    assert.equal(refusedTool.auth, 'static');
    assert.equal(refusedTool.server, 'direct');
    assert.equal(refusedTool.method, 'tools/call');
    const ok = await lineWhere('the echo call', (l) => l.surface === 'proxy' && l.name === 'echo');
    assert.equal(ok.outcome, 'ok');
    assert.equal(typeof ok.durationMs, 'number');
    assert.equal(ok.requestId, echo.headers.get('x-request-id'));
    assert.ok(!Number.isNaN(Date.parse(ok.time)));
    assert.equal(ok.arguments, undefined);
    const rawLine = await lineWhere(
      'the raw URL refusal',
      (l) => l.surface === 'proxy' && l.outcome === 'forbidden_server' && l.method === 'initialize',
    );
    assert.equal(rawLine.server, new URL(streamable.url).host);
    const unnamedLine = await lineWhere(
      'the unnamed server',
      (l) => l.surface === 'proxy' && l.server === 'hidden',
    );
    assert.equal(unnamedLine.outcome, 'forbidden_server');
  });

  it('/servers/{name}/mcp and /mcp: the same tools for an SDK client; raw URLs 403', async () => {
    const client = new Client({ name: 'grants', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${proxy.url}/servers/legacy/mcp`), {
        requestInit: { headers: { 'x-proxy-token': NARROW } },
      }),
    );
    try {
      const tools = await client.listTools();
      assert.deepEqual(
        tools.tools.map((t) => t.name),
        ['echo'],
      );
      await assert.rejects(
        client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }),
        (error: Error & { code?: number }) => error.code === -32602,
      );
    } finally {
      await client.close();
    }
    const raw = await fetch(`${proxy.url}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'x-proxy-token': NARROW, 'x-mcp-server-url': streamable.url },
      body: JSON.stringify(INIT),
    });
    assert.equal(raw.status, 403);
    assert.equal(
      ((await raw.json()) as { error: { data: { code: string } } }).error.data.code,
      'forbidden_server',
    );
    const line = await lineWhere('the /mcp tool refusal', (l) => l.surface === 'mcp' && l.name === 'get-sum');
    assert.equal(line.outcome, 'forbidden_tool');
    assert.equal(line.server, 'legacy');
    await lineWhere(
      'the /mcp raw URL refusal',
      (l) => l.surface === 'mcp' && l.outcome === 'forbidden_server',
    );
  });

  it('/mcp: one audit line per batch element', async () => {
    const init = await fetch(`${proxy.url}/servers/legacy/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'x-proxy-token': NARROW },
      body: JSON.stringify(INIT),
    });
    const session = init.headers.get('mcp-session-id') ?? '';
    await init.text();
    const batch = await fetch(`${proxy.url}/servers/legacy/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'x-proxy-token': NARROW,
        'mcp-session-id': session,
      },
      body: JSON.stringify([
        {
          jsonrpc: '2.0',
          id: 'batch-a',
          method: 'tools/call',
          params: { name: 'echo', arguments: { message: 'hi' } },
        },
        { jsonrpc: '2.0', id: 'batch-b', method: 'tools/call', params: { name: 'get-env', arguments: {} } },
      ]),
    });
    assert.equal(batch.status, 200);
    await batch.json();
    const a = await lineWhere('batch element a', (l) => l.rpcId === 'batch-a');
    const b = await lineWhere('batch element b', (l) => l.rpcId === 'batch-b');
    assert.equal(a.outcome, 'ok');
    assert.equal(b.outcome, 'forbidden_tool');
    assert.equal(a.requestId, b.requestId);
    // One line per element, none for the exchange itself.
    assert.equal(auditLines().filter((l) => l.requestId === a.requestId).length, 2);
  });

  it('WS /ws: the same tools; a raw URL handshake is refused 403; each message audited', async () => {
    const ws = new WebSocket(`${wsUrl()}/ws?server=legacy`, ['mcp', `proxy-token.${NARROW}`]);
    const frames: Array<{
      id?: number;
      result?: { tools?: Array<{ name: string }> };
      error?: { code: number };
    }> = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify(INIT));
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'get-sum', arguments: { a: 1, b: 2 } },
      }),
    );
    await eventually(() => frames.some((f) => f.id === 1) && frames.some((f) => f.id === 2), {
      timeoutMs: 10_000,
      what: 'both answers',
    });
    assert.deepEqual(
      frames.find((f) => f.id === 1)?.result?.tools?.map((t) => t.name),
      ['echo'],
    );
    assert.equal(frames.find((f) => f.id === 2)?.error?.code, -32602);
    ws.close();
    const line = await lineWhere('the /ws tool refusal', (l) => l.surface === 'ws' && l.name === 'get-sum');
    assert.equal(line.outcome, 'forbidden_tool');
    const list = await lineWhere(
      'the /ws tools/list',
      (l) => l.surface === 'ws' && l.method === 'tools/list',
    );
    assert.equal(list.outcome, 'ok');
    assert.equal(list.requestId, line.requestId);
    assert.deepEqual(
      auditLines()
        .filter((l) => l.requestId === line.requestId)
        .map((l) => `${l.method} ${l.outcome}`)
        .sort(),
      ['initialize ok', 'tools/call forbidden_tool', 'tools/list ok'],
    );

    const status = await new Promise<number>((resolve, reject) => {
      const refused = new WebSocket(`${wsUrl()}/ws?mcp_server_url=${encodeURIComponent(streamable.url)}`, [
        'mcp',
        `proxy-token.${NARROW}`,
      ]);
      refused.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      refused.once('open', () => reject(new Error('opened')));
      refused.once('error', () => {});
    });
    assert.equal(status, 403);
    await lineWhere(
      'the /ws handshake refusal',
      (l) => l.surface === 'ws' && l.outcome === 'forbidden_server',
    );
  });

  it('URL patterns: a matching raw URL passes, another is refused 403', async () => {
    const patterned = { url: proxy.url, token: PATTERNED };
    assert.equal((await postProxy(patterned, { mcp_server_url: streamable.url, ...INIT })).status, 200);
    const other = await postProxy(patterned, { mcp_server_url: sse.url, transport: 'sse', ...INIT });
    assert.equal(other.status, 403);
    assert.equal(other.body.error.data.code, 'forbidden_server');
    // Compared by scheme, host, port and path: a query does not decide, another path does.
    assert.equal(
      (await postProxy(patterned, { mcp_server_url: `${streamable.url}?x=1`, ...INIT })).status,
      200,
    );
    const deeper = await postProxy(patterned, { mcp_server_url: `${streamable.url}/deeper`, ...INIT });
    assert.equal(deeper.status, 403);
    assert.equal(deeper.body.error.data.code, 'forbidden_server');
    // `**` in the host never spans into the path.
    const spanning = await postProxy(
      { url: proxy.url, token: WIDE_HOSTS },
      { mcp_server_url: `${new URL(streamable.url).origin}/x.example.test/mcp`, ...INIT },
    );
    assert.equal(spanning.status, 403);
    assert.equal(spanning.body.error.data.code, 'forbidden_server');
    // Named servers stay open to it: its grant restricts URLs only.
    assert.equal((await postProxy(patterned, { server: 'hidden', ...INIT })).status, 200);
  });

  it('a rate class replaces the per-principal limit for its principals only', async () => {
    const tight = { url: proxy.url, token: TIGHT };
    const ping = { server: 'direct', ...INIT };
    for (let i = 0; i < 3; i++) assert.equal((await postProxy(tight, ping)).status, 200);
    const limited = await postProxy(tight, ping);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.data.code, 'rate_limited');
    for (let i = 0; i < 5; i++) assert.equal((await postProxy(proxy, ping)).status, 200);
  });

  it('the audit file holds no token and no argument value', async () => {
    await lineWhere('any line', () => true);
    const text = readFileSync(auditPath, 'utf8');
    for (const secret of [NARROW, PATTERNED, TIGHT, proxy.token, sha256(NARROW), SECRET_ARG]) {
      assert.ok(!text.includes(secret), `the audit log must not contain ${secret.slice(0, 8)}…`);
    }
    for (const line of auditLines()) {
      for (const key of [
        'time',
        'subject',
        'auth',
        'server',
        'method',
        'name',
        'outcome',
        'durationMs',
        'requestId',
      ])
        assert.ok(key in line, `${key} in ${JSON.stringify(line)}`);
    }
  });
});

describe('grant settings', () => {
  const configWith = (text: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-grant-config-')), 'proxy.yaml');
    writeFileSync(path, text);
    return () => loadConfig({ env: {}, configPath: path });
  };

  it('refuses a token naming a rate class that does not exist, or a URL pattern that is not a URL', () => {
    assert.throws(
      configWith(`tokens:\n  - sha256: ${sha256('x')}\n    rateClass: nope\n`),
      /tokens\.0\.rateClass": no rate class named "nope"/,
    );
    assert.throws(
      configWith(`tokens:\n  - sha256: ${sha256('x')}\n    urls: ['*.example.com']\n`),
      /URL pattern/,
    );
  });
});

describe('audit trail options', () => {
  it('writes arguments only when AUDIT_LOG_ARGUMENTS=true', async () => {
    const upstream = await startEverything('streamableHttp');
    const lines: string[] = [];
    const proxy = await startProxy(
      { AUDIT_LOG_ARGUMENTS: 'true' },
      { auditDestination: { write: (line: string) => lines.push(line) } },
    );
    try {
      const init = await postProxy(proxy, { mcp_server_url: upstream.url, ...INIT });
      const headers = { 'mcp-session-id': init.headers.get('mcp-session-id') ?? '' };
      await postProxy(
        proxy,
        {
          mcp_server_url: upstream.url,
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'echo', arguments: { message: SECRET_ARG } },
        },
        headers,
      );
      const echo = lines.map((l) => JSON.parse(l) as AuditLine).find((l) => l.name === 'echo');
      assert.deepEqual(echo?.arguments, { message: SECRET_ARG });
      assert.equal(echo?.subject, `token:${sha256(proxy.token).slice(0, 12)}`);
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });

  it('writes the line of a request whose caller leaves before the answer', async () => {
    const reached = Promise.withResolvers<void>();
    const silent = createServer(() => reached.resolve()); // takes the request, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const lines: string[] = [];
    const proxy = await startProxy({}, { auditDestination: { write: (line: string) => lines.push(line) } });
    try {
      const { port } = silent.address() as AddressInfo;
      const caller = new AbortController();
      const call = fetch(`${proxy.url}/proxy`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-proxy-token': proxy.token },
        body: JSON.stringify({
          mcp_server_url: `http://127.0.0.1:${port}/mcp`,
          transport: 'streamable-http',
          jsonrpc: '2.0',
          id: 'left',
          method: 'tools/call',
          params: { name: 'slow' },
        }),
        signal: caller.signal,
      }).catch(() => undefined);
      await reached.promise;
      caller.abort();
      await call;
      await eventually(() => lines.length > 0, {
        timeoutMs: 5_000,
        what: 'the line of the call left behind',
      });
      const line = JSON.parse(lines[0] as string) as AuditLine;
      assert.equal(line.name, 'slow');
      assert.equal(line.outcome, 'client_closed');
    } finally {
      silent.closeAllConnections();
      await proxy.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses to start with an AUDIT_LOG file it cannot open, naming it', async () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-audit-missing-')), 'no-such-dir', 'audit.log');
    await assert.rejects(startProxy({ AUDIT_LOG: missing }), (error: Error) =>
      error.message.includes(`AUDIT_LOG: cannot open ${missing}`),
    );
  });

  it('a slow file drops and counts lines instead of buffering without bound', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-audit-sink-')), 'audit.log');
    const warnings: string[] = [];
    const sink = openAuditSink(path, (message) => warnings.push(message), 4_096);
    const line = `${JSON.stringify({ filler: 'x'.repeat(200) })}\n`;
    // All in one tick: nothing reaches the disk meanwhile, so the buffer bound decides.
    for (let i = 0; i < 1_000; i++) sink.write(line);
    await sink.close();
    const written = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    assert.ok(written.length < 1_000, `${written.length} lines written`);
    const counts = written
      .map((l) => JSON.parse(l) as { dropped?: number })
      .filter((l) => l.dropped !== undefined);
    assert.equal(counts.length, 1);
    // Every line is either written or counted.
    assert.equal(written.length - 1 + (counts[0]?.dropped ?? 0), 1_000);
    assert.equal(warnings.length, 1);
  });
});

describe('a reload that changes a tool grant', () => {
  it('ends the sockets and sessions opened under the old grant; the new grant applies', async () => {
    const upstream = await startEverything('sse');
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-retool-'));
    const file = join(dir, 'proxy.json');
    const write = (tools: string[]) =>
      writeFileSync(
        file,
        JSON.stringify({
          servers: { legacy: { url: upstream.url } },
          tokens: [{ sha256: sha256(NARROW), tools }],
        }),
      );
    write(['echo']);
    const env = { ALLOW_PRIVATE_NETWORKS: 'true', WS_ALLOW_MISSING_ORIGIN: 'true', LOG_LEVEL: 'warn' };
    const proxy = await startProxy({ ...env, MCP_PROXY_CONFIG: file });
    try {
      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=legacy`, [
        'mcp',
        `proxy-token.${NARROW}`,
      ]);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const session = await postProxy({ url: proxy.url, token: NARROW }, { server: 'legacy', ...INIT });
      const sessionId = session.headers.get('mcp-session-id') ?? '';
      assert.notEqual(sessionId, '');
      write(['echo', 'get-sum']);
      proxy.app.reload(loadConfig({ env: { ...env, MCP_PROXY_CONFIG: file } }));
      const timeout = new Promise<string>((resolve) => setTimeout(resolve, 5_000, 'still open').unref());
      assert.equal(await Promise.race([closed, timeout]), 4401);
      const stale = await postProxy(
        { url: proxy.url, token: NARROW },
        { server: 'legacy', jsonrpc: '2.0', id: 2, method: 'tools/list' },
        { 'mcp-session-id': sessionId },
      );
      assert.equal(stale.status, 404);
      const fresh = await postProxy({ url: proxy.url, token: NARROW }, { server: 'legacy', ...INIT });
      const list = await postProxy(
        { url: proxy.url, token: NARROW },
        { server: 'legacy', jsonrpc: '2.0', id: 3, method: 'tools/list' },
        { 'mcp-session-id': fresh.headers.get('mcp-session-id') ?? '' },
      );
      assert.deepEqual(list.body.result.tools.map((t: { name: string }) => t.name).sort(), [
        'echo',
        'get-sum',
      ]);
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });
});

describe('a minted principal', () => {
  it('meets the tools it was minted with, and is audited as minted under its subject', async () => {
    const upstream = await startEverything('streamableHttp');
    const lines: string[] = [];
    const proxy = await startProxy(
      { ADMIN_TOKEN: ADMIN, SIGNING_KEYS: keyFile() },
      { auditDestination: { write: (line: string) => lines.push(line) } },
    );
    try {
      const { token } = await mint(proxy.url, 'alice', { tools: ['echo'] });
      const alice = { url: proxy.url, token };
      const init = await postProxy(alice, { mcp_server_url: upstream.url, ...INIT });
      const headers = { 'mcp-session-id': init.headers.get('mcp-session-id') ?? '' };
      const call = (id: number, name: string) =>
        postProxy(
          alice,
          {
            mcp_server_url: upstream.url,
            jsonrpc: '2.0',
            id,
            method: 'tools/call',
            params: { name, arguments: { message: SECRET_ARG, a: 1, b: 2 } },
          },
          headers,
        );
      assert.equal((await call(1, 'get-sum')).body.error.code, -32602);
      assert.equal((await call(2, 'echo')).body.result.content[0].text, `Echo: ${SECRET_ARG}`);
      const audit = lines.map((l) => JSON.parse(l) as AuditLine);
      const refused = audit.find((l) => l.name === 'get-sum');
      assert.equal(refused?.outcome, 'forbidden_tool');
      assert.equal(refused?.subject, 'alice');
      assert.equal(refused?.auth, 'minted');
      assert.equal(audit.find((l) => l.name === 'echo')?.outcome, 'ok');
      const text = lines.join('');
      for (const secret of [token, ADMIN, SECRET_ARG]) assert.ok(!text.includes(secret));
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });
});
