/**
 * Review of issue 17, finding 2: the tool grant that applies is the current caller's, on every
 * request and every route, never the grant of whoever opened the session. Two tokens of one
 * subject (same principal, different tool grants) share held sessions by id, pooled modern
 * sessions and POST /proxy sessions; a reload that changes an OIDC issuer's grant mapping ends
 * the sockets admitted under the old one, and the held session's next request takes the new.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/config.ts';
import { createConformanceMcpServer } from './fixtures/conformance-server.ts';
import { ADMIN, keyFile, mint } from './helpers/minted.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';
import { startStdioRelay } from './helpers/stdio-relay.ts';

const AUDIENCE = 'https://mcp-proxy.test';
// The stdio server `local`: a child per session, each a pipe to a conformance server of its own in
// this process (helpers/stdio-relay.ts).
const stdio = await startStdioRelay(() => createConformanceMcpServer());
after(() => stdio.close());
const SESSION_VERSION = '2025-06-18';
const MODERN = '2026-07-28';
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: SESSION_VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } },
};
const IMAGE = {
  jsonrpc: '2.0',
  id: 2,
  method: 'tools/call',
  params: { name: 'test_image_content', arguments: {} },
};

function writeConfig(config: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-grant-')), 'proxy.json');
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** The proxy's config: `staff` may use `staffTools` (all tools when undefined), `admin` all. */
function oidcConfig(issuer: string, staffTools?: string[]) {
  return {
    servers: { local: stdio.server },
    oidc: {
      issuers: [
        {
          issuer,
          audience: AUDIENCE,
          claims: { groups: { admin: {}, staff: staffTools ? { tools: staffTools } : {} } },
        },
      ],
    },
  };
}

async function postMcp(
  proxy: RunningProxy,
  token: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${proxy.url}/servers/local/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': SESSION_VERSION,
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    session: response.headers.get('mcp-session-id'),
    text: await response.text(),
  };
}

/** Opens a held session for `token` (initialize + initialized); returns its id. */
async function openHeld(proxy: RunningProxy, token: string): Promise<string> {
  const opened = await postMcp(proxy, token, INIT);
  assert.equal(opened.status, 200, opened.text);
  assert.ok(opened.session);
  await postMcp(
    proxy,
    token,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { 'mcp-session-id': opened.session },
  );
  return opened.session;
}

/** A modern (2026-07-28) tools/call, which a stdio server answers through a pooled session. */
async function modernCall(proxy: RunningProxy, token: string, id: number, name: string): Promise<string> {
  const response = await fetch(`${proxy.url}/servers/local/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': MODERN,
      'mcp-method': 'tools/call',
      'mcp-name': name,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: {
        name,
        arguments: {},
        _meta: {
          'io.modelcontextprotocol/protocolVersion': MODERN,
          'io.modelcontextprotocol/clientCapabilities': {},
          'io.modelcontextprotocol/clientInfo': { name: 'x', version: '1' },
        },
      },
    }),
  });
  return `${response.status} ${await response.text()}`;
}

function toolNames(text: string): string[] {
  const data = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}');
  return (JSON.parse(data).result?.tools ?? []).map((tool: { name: string }) => tool.name);
}

describe('the tool grant is the current caller’s (OIDC, one subject, two grants)', () => {
  let idp: TestOidcIssuer;
  let proxy: RunningProxy;
  let broad: string;
  let narrow: string;
  before(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    proxy = await startProxy({ MCP_PROXY_CONFIG: writeConfig(oidcConfig(idp.issuer, ['test_simple_text'])) });
    broad = await idp.sign({ groups: ['admin'] });
    narrow = await idp.sign({ groups: ['staff'] });
  });
  after(async () => {
    await proxy?.close();
    await idp?.stop();
  });

  it('/mcp held session: a narrower token of the same subject meets its own grant (JSON and stream)', async () => {
    const session = await openHeld(proxy, broad);
    const json = await postMcp(proxy, narrow, IMAGE, {
      'mcp-session-id': session,
      accept: 'application/json',
    });
    assert.match(json.text, /Unknown tool: test_image_content/);
    const streamed = await postMcp(
      proxy,
      narrow,
      { ...IMAGE, id: 3 },
      {
        'mcp-session-id': session,
        accept: 'text/event-stream',
      },
    );
    assert.match(streamed.text, /Unknown tool: test_image_content/);
    const listed = await postMcp(
      proxy,
      narrow,
      { jsonrpc: '2.0', id: 4, method: 'tools/list' },
      {
        'mcp-session-id': session,
        accept: 'application/json',
      },
    );
    assert.deepEqual(toolNames(listed.text), ['test_simple_text']);
    // The opener still has its own, wider grant in the same session.
    const own = await postMcp(
      proxy,
      broad,
      { ...IMAGE, id: 5 },
      { 'mcp-session-id': session, accept: 'application/json' },
    );
    assert.match(own.text, /"image"/);
  });

  it('/mcp pooled modern session: the narrower token does not ride the broader one’s grant', async () => {
    assert.match(await modernCall(proxy, broad, 1, 'test_image_content'), /"image"/);
    const after = await modernCall(proxy, narrow, 2, 'test_image_content');
    assert.doesNotMatch(after, /"image"/);
    assert.match(after, /Unknown tool: test_image_content/);
  });

  it('POST /proxy session: the narrower token meets its own grant', async () => {
    const as = (token: string) => ({ url: proxy.url, token });
    const opened = await postProxy(as(broad), { server: 'local', ...INIT });
    assert.equal(opened.status, 200);
    const headers = { 'mcp-session-id': opened.headers.get('mcp-session-id') ?? '' };
    const hidden = await postProxy(as(narrow), { server: 'local', ...IMAGE }, headers);
    assert.match(JSON.stringify(hidden.body), /Unknown tool: test_image_content/);
    const listed = await postProxy(
      as(narrow),
      { server: 'local', jsonrpc: '2.0', id: 3, method: 'tools/list' },
      headers,
    );
    assert.deepEqual(
      listed.body.result.tools.map((tool: { name: string }) => tool.name),
      ['test_simple_text'],
    );
  });
});

describe('minted tokens of one subject, two tool grants', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await startProxy({
      ADMIN_TOKEN: ADMIN,
      SIGNING_KEYS: keyFile(),
      MCP_PROXY_CONFIG: writeConfig({
        servers: { local: stdio.server },
      }),
    });
  });
  after(async () => {
    await proxy?.close();
  });

  it('the pooled session and a held session serve each token with its own grant', async () => {
    const broad = (await mint(proxy.url, 'alice')).token;
    const narrow = (await mint(proxy.url, 'alice', { tools: ['test_simple_text'] })).token;
    assert.match(await modernCall(proxy, broad, 1, 'test_image_content'), /"image"/);
    assert.match(
      await modernCall(proxy, narrow, 2, 'test_image_content'),
      /Unknown tool: test_image_content/,
    );
    const session = await openHeld(proxy, broad);
    const held = await postMcp(proxy, narrow, IMAGE, {
      'mcp-session-id': session,
      accept: 'application/json',
    });
    assert.match(held.text, /Unknown tool: test_image_content/);
  });
});

describe('a reload that changes an OIDC issuer’s grant mapping', () => {
  it('ends its principals’ sockets; their held sessions take the new grant', async () => {
    const idp = await startOidcIssuer({ audience: AUDIENCE });
    const env = { WS_ALLOW_MISSING_ORIGIN: 'true' };
    const proxy = await startProxy({ ...env, MCP_PROXY_CONFIG: writeConfig(oidcConfig(idp.issuer)) });
    try {
      const token = await idp.sign({ groups: ['staff'] });
      const session = await openHeld(proxy, token);
      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ws?server=local`, [
        'mcp',
        `proxy-token.${token}`,
      ]);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      proxy.app.reload(
        loadConfig({
          env: {
            PROXY_TOKEN: proxy.token,
            ALLOW_PRIVATE_NETWORKS: 'true',
            STORE: 'memory',
            ...env,
            MCP_PROXY_CONFIG: writeConfig(oidcConfig(idp.issuer, ['test_simple_text'])),
          },
        }),
      );
      const timeout = new Promise<string>((resolve) => setTimeout(resolve, 5_000, 'still open').unref());
      assert.equal(await Promise.race([closed, timeout]), 4401);
      const call = await postMcp(proxy, token, IMAGE, {
        'mcp-session-id': session,
        accept: 'application/json',
      });
      assert.doesNotMatch(call.text, /"image"/);
    } finally {
      await proxy.close();
      await idp.stop();
    }
  });
});
