/**
 * Issue 20: a virtual server, the proxy answering as one MCP server over several configured
 * ones — server-everything over stdio, an SDK server over Streamable HTTP written here, and a
 * member that is down — through the official SDK client and POST /proxy.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { loadConfig } from '../src/config/config.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { type ConnectedClient, connectClient, serverTarget } from './helpers/mcp-client.ts';
import { connectModernClient } from './helpers/modern-client.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);

const UNAVAILABLE = 'io.github.mcp-proxy/unavailable';
/** May reach the virtual server and its `notes` member only. */
const NOTES_ONLY = 'virtual-notes-only-token-0123456789';
/** May reach every member, but call only `notes__echo` (named as the client sees it). */
const ECHO_ONLY = 'virtual-echo-only-token-0123456789ab';
/** May reach the virtual server (all its members), and no server directly. */
const WORKSPACE_ONLY = 'virtual-workspace-only-token-012345';
/** May reach `notes` directly, but not the virtual server. */
const NO_WORKSPACE = 'virtual-no-workspace-token-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** What the `slow` tool of every notes server saw: a call started, a call cancelled. */
const slowCalls = { started: Promise.withResolvers<void>(), cancelled: Promise.withResolvers<void>() };

/** An SDK v1 server (stateless Streamable HTTP, JSON answers) with `echo`, `add_note` and `slow`. */
async function startNotes(port = 0): Promise<{ server: Server; port: number; stop(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const mcp = new McpServer({ name: 'notes', version: '1.0.0' });
    mcp.registerTool('slow', { description: 'Runs until cancelled (30 s at most).' }, async (extra) => {
      slowCalls.started.resolve();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 30_000);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          slowCalls.cancelled.resolve();
          resolve();
        });
      });
      return { content: [{ type: 'text', text: 'done' }] };
    });
    mcp.registerTool(
      'echo',
      { description: 'Echoes its input, as notes.', inputSchema: { message: z.string() } },
      ({ message }) => ({ content: [{ type: 'text', text: `notes echo: ${message}` }] }),
    );
    mcp.registerTool(
      'add_note',
      { description: 'Adds a note.', inputSchema: { text: z.string() } },
      ({ text }) => ({ content: [{ type: 'text', text: `noted: ${text}` }] }),
    );
    mcp.registerPrompt(
      'greet',
      { description: 'Greets someone.', argsSchema: { who: z.string() } },
      ({ who }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${who}` } }] }),
    );
    mcp.registerResource('today', 'notes://today', { mimeType: 'text/plain' }, (uri) => ({
      contents: [{ uri: uri.href, text: 'buy milk' }],
    }));
    mcp.registerResource(
      'day',
      new ResourceTemplate('notes://day/{day}', {
        list: undefined,
        complete: { day: (value) => ['monday', 'tuesday'].filter((day) => day.startsWith(value)) },
      }),
      { mimeType: 'text/plain' },
      (uri, { day }) => ({ contents: [{ uri: uri.href, text: `notes of ${String(day)}` }] }),
    );
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A member of our own that declares tools but answers `tools/list` with an error whose `data.code`
 * is text of its choosing: it must never become a metric label or a `_meta` code.
 */
async function startOdd(): Promise<{ port: number; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const message = JSON.parse(body) as { id?: number; method: string };
      if (message.id === undefined) return void res.writeHead(202).end();
      const answer =
        message.method === 'initialize'
          ? {
              result: {
                protocolVersion: '2025-06-18',
                capabilities: { tools: {} },
                serverInfo: { name: 'odd', version: '1' },
              },
            }
          : { error: { code: -32000, message: 'no', data: { code: `evil-label-${message.id}` } } };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, ...answer }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const METRICS_TOKEN = 'virtual-metrics-token-0123456789';

interface ToolPage {
  tools: Array<{ name: string; description?: string }>;
  nextCursor?: string;
  _meta?: Record<string, unknown>;
}

/** Every page of the merged list, as the SDK client gets them. */
async function allPages(client: ConnectedClient): Promise<ToolPage[]> {
  const pages: ToolPage[] = [];
  let cursor: string | undefined;
  do {
    const page = (await client.client.listTools(cursor === undefined ? {} : { cursor })) as ToolPage;
    pages.push(page);
    cursor = page.nextCursor;
  } while (cursor !== undefined && pages.length < 20);
  return pages;
}

const names = (pages: readonly ToolPage[]) => pages.flatMap((page) => page.tools.map((tool) => tool.name));
const unavailable = (pages: readonly ToolPage[]) =>
  pages.flatMap((page) => (page._meta?.[UNAVAILABLE] as Array<{ server: string }> | undefined) ?? []);

function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content;
  return content?.map((part) => part.text ?? '').join('') ?? '';
}

describe('virtual servers', () => {
  const ENV = () => ({
    MCP_PROXY_CONFIG: configPath,
    UPSTREAM_TIMEOUT_MS: '5000',
    PROXY_TOKEN: TEST_TOKEN,
    ALLOW_PRIVATE_NETWORKS: 'true',
    STORE: 'memory',
    METRICS_TOKEN,
  });
  let proxy: RunningProxy;
  let notes: Awaited<ReturnType<typeof startNotes>>;
  let configPath: string;
  let odd: Awaited<ReturnType<typeof startOdd>>;
  /** A member that takes requests and never answers. */
  let silent: Server;
  const clients: ConnectedClient[] = [];
  const connect = async (token?: string) => {
    const connected = await connectClient(proxy, serverTarget('workspace'), {
      roots: false,
      ...(token === undefined ? {} : { token }),
    });
    clients.push(connected);
    return connected;
  };

  before(async () => {
    notes = await startNotes();
    odd = await startOdd();
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const downPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-virtual-'));
    configPath = join(dir, 'proxy.yaml');
    writeFileSync(
      configPath,
      [
        'servers:',
        '  everything:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(EVERYTHING)}, stdio]`,
        `    env: ${JSON.stringify(compileCacheEnv())}`,
        '  notes:',
        `    url: http://127.0.0.1:${notes.port}/mcp`,
        '    transport: streamable-http',
        '  down:',
        `    url: http://127.0.0.1:${downPort}/mcp`,
        '    transport: streamable-http',
        '  silent:',
        `    url: http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`,
        '    transport: streamable-http',
        '  odd:',
        `    url: http://127.0.0.1:${odd.port}/mcp`,
        '    transport: streamable-http',
        'virtualServers:',
        '  workspace:',
        '    servers: [everything, notes, down, odd]',
        '  slowspace:',
        '    servers: [silent, notes]',
        '    listTimeoutMs: 300',
        '  searchable:',
        '    servers: [everything, notes]',
        '    toolSearch: true',
        'tokens:',
        `  - sha256: ${sha256(NOTES_ONLY)}`,
        '    servers: [workspace, notes]',
        `  - sha256: ${sha256(ECHO_ONLY)}`,
        '    tools: [notes__echo]',
        `  - sha256: ${sha256(WORKSPACE_ONLY)}`,
        '    servers: [workspace]',
        `  - sha256: ${sha256(NO_WORKSPACE)}`,
        '    servers: [notes]',
        '',
      ].join('\n'),
    );
    proxy = await startProxy(ENV());
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await proxy?.close();
    await notes?.stop();
    await odd?.stop();
    silent?.closeAllConnections();
    await new Promise((resolve) => silent?.close(resolve));
  });

  it('answers initialize as one server, and lists every member’s tools prefixed, page by page', async () => {
    const { client } = await connect();
    assert.equal(client.getServerVersion()?.name, 'workspace');
    assert.ok(client.getServerCapabilities()?.tools, 'tools are advertised');
    const pages = await allPages(clients[0] as ConnectedClient);
    const listed = names(pages);
    // Members answer together, their pages given in configured order (a page may hold several).
    const firstNotes = listed.findIndex((name) => name.startsWith('notes__'));
    assert.ok(
      firstNotes > 0 && listed.slice(firstNotes).every((name) => name.startsWith('notes__')),
      `everything's tools come before notes' (got ${listed.join(', ')})`,
    );
    for (const name of ['everything__echo', 'notes__echo', 'notes__add_note'])
      assert.ok(listed.includes(name), `${name} listed (got ${listed.join(', ')})`);
    assert.ok(
      listed.every((name) => /^(everything|notes)__/.test(name)),
      'every name is prefixed',
    );
    assert.equal(new Set(listed).size, listed.length, 'no name twice');
    assert.deepEqual(
      unavailable(pages),
      [
        { server: 'down', code: 'upstream_unreachable' },
        { server: 'odd', code: 'member_error' },
      ],
      'the members that are down or fail are named in _meta, with codes of the proxy',
    );
    const metrics = await fetch(`${proxy.url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    const text = await metrics.text();
    assert.match(text, /reason="virtual_member:upstream_unreachable"/);
    assert.match(text, /reason="virtual_member:member_error"/);
    assert.doesNotMatch(text, /evil-label/, 'a member’s text never becomes a label');
  });

  it('routes a call to the member its prefix names, with the member’s own tool name', async () => {
    const { client } = await connect();
    assert.equal(
      textOf(await client.callTool({ name: 'notes__echo', arguments: { message: 'hi' } })),
      'notes echo: hi',
    );
    assert.equal(
      textOf(await client.callTool({ name: 'everything__echo', arguments: { message: 'hi' } })),
      'Echo: hi',
    );
    await assert.rejects(client.callTool({ name: 'nope__echo', arguments: {} }), /Unknown tool: nope__echo/);
    await assert.rejects(client.callTool({ name: 'echo', arguments: {} }), /Unknown tool: echo/);
  });

  it('merges and routes prompts the same way', async () => {
    const { client } = await connect();
    const listed: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const result = await client.listPrompts(cursor === undefined ? {} : { cursor });
      listed.push(...result.prompts.map((prompt) => prompt.name));
      cursor = result.nextCursor;
      if (cursor === undefined) break;
    }
    assert.ok(listed.includes('notes__greet'), listed.join(', '));
    assert.ok(
      listed.some((name) => name.startsWith('everything__')),
      listed.join(', '),
    );
    const prompt = await client.getPrompt({ name: 'notes__greet', arguments: { who: 'Ada' } });
    assert.deepEqual(prompt.messages[0]?.content, { type: 'text', text: 'Hello, Ada' });
    await assert.rejects(client.getPrompt({ name: 'notes__nope' }), /Prompt notes__nope not found|nope/);
    await assert.rejects(client.getPrompt({ name: 'greet' }), /Unknown prompt: greet/);
  });

  it('lists resources and templates under mapped URIs, and reads through them', async () => {
    const { client } = await connect();
    const uris: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const result = await client.listResources(cursor === undefined ? {} : { cursor });
      uris.push(...result.resources.map((resource) => resource.uri));
      cursor = result.nextCursor;
      if (cursor === undefined) break;
    }
    assert.ok(uris.includes('mcpp://notes/notes://today'), uris.slice(0, 5).join(', '));
    const fromEverything = uris.find((uri) => uri.startsWith('mcpp://everything/'));
    assert.ok(fromEverything, 'server-everything’s resources are listed too');
    const read = await client.readResource({ uri: 'mcpp://notes/notes://today' });
    assert.equal((read.contents[0] as { text?: string }).text, 'buy milk');
    const everything = await client.readResource({ uri: fromEverything });
    assert.ok(everything.contents.length > 0);
    const listedTemplates: string[] = [];
    cursor = undefined;
    for (let page = 0; page < 20; page++) {
      const result = await client.listResourceTemplates(cursor === undefined ? {} : { cursor });
      listedTemplates.push(...result.resourceTemplates.map((template) => template.uriTemplate));
      cursor = result.nextCursor;
      if (cursor === undefined) break;
    }
    assert.ok(listedTemplates.includes('mcpp://notes/notes://day/{day}'), listedTemplates.join(', '));
    const day = await client.readResource({ uri: 'mcpp://notes/notes://day/monday' });
    assert.equal((day.contents[0] as { text?: string }).text, 'notes of monday');
    const completed = await client.complete({
      ref: { type: 'ref/resource', uri: 'mcpp://notes/notes://day/{day}' },
      argument: { name: 'day', value: 'mo' },
    });
    assert.deepEqual(completed.completion.values, ['monday'], 'completions go to the member of the template');
    await assert.rejects(client.readResource({ uri: 'notes://today' }), /Unknown resource: notes:\/\/today/);
  });

  it('offers search_tools and call_tool instead of the list in tool search mode', async () => {
    const connected = await connectClient(proxy, serverTarget('searchable'), { roots: false });
    clients.push(connected);
    const { client } = connected;
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((tool) => tool.name),
      ['search_tools', 'call_tool'],
    );
    const found = await client.callTool({
      name: 'search_tools',
      arguments: { query: 'echo notes', limit: 2 },
    });
    const ranked = JSON.parse(textOf(found)).tools as Array<{ name: string; inputSchema?: unknown }>;
    assert.deepEqual(
      ranked.map((tool) => tool.name),
      ['notes__echo', 'everything__echo'],
      'the name and description that match most come first',
    );
    assert.ok(ranked[0]?.inputSchema, 'with what a call needs');
    const called = await client.callTool({
      name: 'call_tool',
      arguments: { name: 'notes__echo', arguments: { message: 'found' } },
    });
    assert.equal(textOf(called), 'notes echo: found');
    await assert.rejects(
      client.callTool({ name: 'call_tool', arguments: { name: 'nope__x' } }),
      /Unknown tool: nope__x/,
    );
  });

  it('leaves a member that is slow to list out of the page, past the list deadline', async () => {
    const started = performance.now();
    const reply = await postProxy(proxy, {
      server: 'slowspace',
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
    });
    const elapsed = performance.now() - started;
    assert.deepEqual(reply.body.result._meta[UNAVAILABLE], [{ server: 'silent', code: 'upstream_timeout' }]);
    assert.ok(
      (reply.body.result.tools as Array<{ name: string }>).some((tool) => tool.name === 'notes__echo'),
      'the others serve',
    );
    // UPSTREAM_TIMEOUT_MS is 5 s here: the answer came from the 300 ms list deadline.
    assert.ok(elapsed < 4_000, `answered in ${Math.round(elapsed)} ms`);
  });

  it('passes a client’s cancellation on to the member', async () => {
    const { client } = await connect();
    const controller = new AbortController();
    const call = client.callTool({ name: 'notes__slow', arguments: {} }, undefined, {
      signal: controller.signal,
    });
    call.catch(() => {});
    await slowCalls.started.promise;
    controller.abort();
    await assert.rejects(call);
    // Well before UPSTREAM_TIMEOUT_MS (5 s here), which would cancel the member's call anyway.
    const cancelled = await Promise.race([
      slowCalls.cancelled.promise.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(resolve, 2_500, false).unref()),
    ]);
    assert.ok(cancelled, 'the member saw the cancellation');
  });

  it('serves POST /proxy with server naming the virtual server', async () => {
    const reply = await postProxy(proxy, {
      server: 'workspace',
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'notes__add_note', arguments: { text: 'milk' } },
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.id, 7);
    assert.equal(textOf(reply.body.result), 'noted: milk');
  });

  it('refuses a cursor the proxy did not issue', async () => {
    const reply = await postProxy(proxy, {
      server: 'workspace',
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
      params: { cursor: 'forged' },
    });
    assert.equal(reply.body.error.code, -32602);
  });

  it('shows a principal only the members and tools its grants allow', async () => {
    const notesOnly = await connect(NOTES_ONLY);
    const pages = await allPages(notesOnly);
    assert.deepEqual(names(pages).sort(), ['notes__add_note', 'notes__echo', 'notes__slow']);
    assert.deepEqual(unavailable(pages), [], 'a member it may not reach is not even named');
    await assert.rejects(
      notesOnly.client.callTool({ name: 'everything__echo', arguments: { message: 'x' } }),
      /Unknown tool: everything__echo/,
    );
    const workspaceOnly = await connect(WORKSPACE_ONLY);
    const everyMember = names(await allPages(workspaceOnly));
    assert.ok(
      everyMember.includes('everything__echo') && everyMember.includes('notes__echo'),
      'a grant of the virtual server alone reaches its members',
    );
    const direct = await postProxy(
      { url: proxy.url, token: WORKSPACE_ONLY },
      { server: 'notes', jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(direct.status, 404, 'but not the members themselves');
    const echoOnly = await connect(ECHO_ONLY);
    assert.deepEqual(names(await allPages(echoOnly)), ['notes__echo']);
    await assert.rejects(
      echoOnly.client.callTool({ name: 'notes__add_note', arguments: { text: 'x' } }),
      /Unknown tool: notes__add_note/,
    );
  });

  it('drops a member that goes down from the lists, and lists it again when it is back', async () => {
    const { client } = await connect();
    const port = notes.port;
    await notes.stop();
    const without = await allPages(clients.at(-1) as ConnectedClient);
    assert.ok(!names(without).some((name) => name.startsWith('notes__')), 'notes dropped');
    assert.ok(names(without).includes('everything__echo'), 'the others keep serving');
    assert.deepEqual(
      unavailable(without)
        .map((entry) => entry.server)
        .sort(),
      ['down', 'notes', 'odd'],
    );
    await assert.rejects(client.callTool({ name: 'notes__echo', arguments: { message: 'x' } }));
    notes = await startNotes(port);
    const back = await allPages(clients.at(-1) as ConnectedClient);
    assert.ok(names(back).includes('notes__echo'), 'notes listed again');
    assert.equal(
      textOf(await client.callTool({ name: 'notes__echo', arguments: { message: 'back' } })),
      'notes echo: back',
    );
  });

  for (const [who, token] of [
    ['any server', TEST_TOKEN],
    ['the virtual server alone', WORKSPACE_ONLY],
  ] as const) {
    it(`lets a call in flight run on when a reload keeps the virtual server (a token granted ${who})`, async () => {
      const address = { url: proxy.url, token };
      const call = postProxy(address, {
        server: 'workspace',
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: { name: 'everything__trigger-long-running-operation', arguments: { duration: 1, steps: 2 } },
      });
      // The call is under way once the member's session answers another request.
      await postProxy(address, {
        server: 'workspace',
        jsonrpc: '2.0',
        id: 10,
        method: 'tools/call',
        params: { name: 'everything__echo', arguments: { message: 'x' } },
      });
      proxy.app.reload(loadConfig({ env: ENV() }));
      const reply = await call;
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.ok(reply.body.result, JSON.stringify(reply.body));
    });
  }

  it('serves a 2026-07-28 client (SDK v2), refuses a version it does not speak, and gives a 2025 client a session it ends', async () => {
    const modern = await connectModernClient(proxy, '', { path: '/servers/workspace/mcp' });
    try {
      const { tools } = await modern.client.listTools();
      assert.ok(
        tools.some((tool) => tool.name === 'notes__echo'),
        tools.map((tool) => tool.name).join(', '),
      );
      const echo = await modern.client.callTool({ name: 'notes__echo', arguments: { message: 'modern' } });
      assert.deepEqual(echo.content, [{ type: 'text', text: 'notes echo: modern' }]);
    } finally {
      await modern.close();
    }
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'x-proxy-token': proxy.token,
    };
    const future = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
      }),
    });
    const body = (await future.json()) as { error: { code: number; data: { supported: string[] } } };
    assert.equal(body.error.code, -32022);
    assert.ok(
      body.error.data.supported.includes('2026-07-28') && body.error.data.supported.includes('2025-11-25'),
    );
    const disagreeing = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/list',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } },
      }),
    });
    assert.equal(disagreeing.status, 400, 'headers that disagree with the body are refused');
    await disagreeing.body?.cancel();
    // A 2025-era client gets a session at initialize, needs it on every later request, ends it.
    const bare = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      headers: { accept: 'text/event-stream', 'x-proxy-token': proxy.token },
    });
    assert.equal(bare.status, 400, 'a GET without the session id');
    await bare.body?.cancel();
    const initialized = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    await initialized.body?.cancel();
    const session = initialized.headers.get('mcp-session-id') ?? '';
    assert.match(session, /^mcpp2\./, 'a sealed session id');
    const withSession = { 'x-proxy-token': proxy.token, 'mcp-session-id': session };
    const get = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      headers: { accept: 'text/event-stream', ...withSession },
    });
    assert.equal(get.status, 200, 'a GET stream carries what members send outside requests');
    assert.match(get.headers.get('content-type') ?? '', /^text\/event-stream/);
    const deleted = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'DELETE',
      headers: withSession,
    });
    assert.equal(deleted.status, 204);
    // Its GET stream ends with it.
    assert.equal((await get.text()).includes('stream open'), true);
    const again = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'DELETE',
      headers: withSession,
    });
    assert.equal(again.status, 404, 'an ended session is not found');
    await again.body?.cancel();
    const after = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': session },
      body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping' }),
    });
    assert.equal(after.status, 404, 'nor served');
    await after.body?.cancel();
  });

  it('looks unknown to a principal whose grants do not name it', async () => {
    const reply = await postProxy(
      { url: proxy.url, token: NOTES_ONLY },
      { server: 'workspace', jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(reply.status, 200, 'NOTES_ONLY names workspace');
    const hidden = await postProxy(
      { url: proxy.url, token: NO_WORKSPACE },
      { server: 'workspace', jsonrpc: '2.0', id: 1, method: 'ping' },
    );
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.error.data.code, 'unknown_server');
    const mcp = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'x-proxy-token': NO_WORKSPACE,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    assert.equal(mcp.status, 404);
    await mcp.body?.cancel();
  });
});
