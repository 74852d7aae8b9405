/**
 * A reload that narrows what a principal may reach through a virtual server: a member grant does
 * not widen when its member leaves, and calls in flight on /servers/{virtual}/mcp end.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { everythingStdio } from './helpers/everything.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Review 6 (virtual servers), finding 3: a member grant fails open. A token granted
 * `servers: [workspace, a]` sees only member `a` inside `workspace` — until `a` is no longer a
 * member (a reload drops it, or it is renamed): its grant then names no member, and
 * `visibleMembers` (virtual/member-view.ts) falls back to *every* member, so the token that
 * was held to `a` now lists and calls `b`, which no grant ever gave it.
 */
describe('review6 virtual 3: a grant held to one member does not widen when it leaves', () => {
  const ONLY_A = 'review6-virtual-only-a-token-0123456789';

  let proxy: RunningProxy;
  let dir: string;
  let configPath: string;
  let id = 1;
  const env = () => ({ MCP_PROXY_CONFIG: configPath });
  const writeConfig = (members: string[]) =>
    writeFileSync(
      configPath,
      JSON.stringify({
        servers: {
          a: everythingStdio(),
          b: everythingStdio(),
        },
        virtualServers: { workspace: { servers: members } },
        tokens: [{ sha256: sha256(ONLY_A), servers: ['workspace', 'a'] }],
      }),
    );
  const call = (name: string) =>
    postProxy(
      { url: proxy.url, token: ONLY_A },
      {
        server: 'workspace',
        jsonrpc: '2.0',
        id: id++,
        method: 'tools/call',
        params: { name, arguments: { message: 'hi' } },
      },
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-review6-virtual-3-'));
    configPath = join(dir, 'proxy.json');
    writeConfig(['a', 'b']);
    proxy = await startProxy(env());
  });
  after(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps member b hidden from a token granted only a, before and after a reload drops a', async () => {
    const before = await call('b__echo');
    assert.match(before.body.error?.message ?? '', /Unknown tool: b__echo/, JSON.stringify(before.body));
    writeConfig(['b']);
    proxy.app.reload(loadConfig({ env: env() }));
    const after = await call('b__echo');
    assert.match(after.body.error?.message ?? '', /Unknown tool: b__echo/, JSON.stringify(after.body));
  });
});

/**
 * Review 6 (virtual servers), finding 4: a reload that takes a virtual server away from a token
 * ends its calls in flight on `POST /proxy` but not on `/servers/{name}/mcp`. The endpoint
 * returns to the virtual handler before it sets `request.targetKey` (surfaces/mcp/endpoint.ts),
 * so `LiveRequests.endUnreachable` judges the request with no target and keeps it: a member
 * call the token may no longer make through the virtual server runs to its end. The same holds
 * for an OIDC principal whose group a reload narrows (its grants are judged again per holding,
 * which also reads `request.targetKey`).
 */
describe('review6 virtual 4: a reload ends what it takes away on /servers/{virtual}/mcp too', () => {
  const TOKEN = 'review6-virtual-reload-token-0123456789';
  const AUDIENCE = 'https://mcp-proxy.test';
  const EVERYTHING_SERVER = {
    everything: everythingStdio(),
  };

  /**
   * Starts a long call on `/servers/workspace/mcp`, waits until the member answers another request,
   * reloads with the grant narrowed (`narrow`), and returns what the long call got.
   */
  async function callAcrossReload(proxy: RunningProxy, token: string, narrow: () => void) {
    const body = {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'everything__trigger-long-running-operation', arguments: { duration: 3, steps: 3 } },
    };
    const inFlight = fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify(body),
    }).then(
      async (response) => ({
        status: response.status,
        // An answer that became an event stream is ended by destroying it mid-body.
        text: await response.text().catch((error: unknown) => String(error)),
      }),
      (error: unknown) => ({ status: 0, text: String(error) }),
    );
    // The call is under way once the member's session answers another request.
    const echo = await postProxy(
      { url: proxy.url, token },
      {
        server: 'workspace',
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'everything__echo', arguments: { message: 'x' } },
      },
    );
    assert.ok(echo.body.result, JSON.stringify(echo.body));
    narrow();
    return inFlight;
  }

  let proxy: RunningProxy | undefined;
  let idp: TestOidcIssuer | undefined;
  let dir: string;
  let configPath: string;
  const env = () => ({ MCP_PROXY_CONFIG: configPath });
  const writeConfig = (rest: Record<string, unknown>) =>
    writeFileSync(
      configPath,
      JSON.stringify({
        servers: EVERYTHING_SERVER,
        virtualServers: { workspace: { servers: ['everything'] } },
        ...rest,
      }),
    );

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-review6-virtual-4-'));
    configPath = join(dir, 'proxy.json');
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await idp?.stop();
    idp = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends a call in flight once the token no longer names the virtual server', async () => {
    const tokens = (servers: string[]) => ({ tokens: [{ sha256: sha256(TOKEN), servers }] });
    writeConfig(tokens(['workspace', 'everything']));
    const running = await startProxy(env());
    proxy = running;
    const reply = await callAcrossReload(running, TOKEN, () => {
      writeConfig(tokens(['everything']));
      running.app.reload(loadConfig({ env: env() }));
    });
    // Ended: the connection is destroyed (as POST /proxy's is), never the call's result.
    assert.doesNotMatch(reply.text, /Long running operation completed/, JSON.stringify(reply));
  });

  it("ends an OIDC principal's call in flight once its group no longer names the virtual server", async () => {
    const issuer = await startOidcIssuer({ audience: AUDIENCE });
    idp = issuer;
    const staff = (servers: string[]) => ({
      oidc: {
        issuers: [{ issuer: issuer.issuer, audience: AUDIENCE, claims: { groups: { staff: { servers } } } }],
      },
    });
    writeConfig(staff(['workspace', 'everything']));
    const running = await startProxy(env());
    proxy = running;
    const token = await issuer.sign({ groups: ['staff'] });
    const reply = await callAcrossReload(running, token, () => {
      writeConfig(staff(['everything']));
      running.app.reload(
        loadConfig({
          env: { ...env(), PROXY_TOKEN: running.token, ALLOW_PRIVATE_NETWORKS: 'true', STORE: 'memory' },
        }),
      );
    });
    assert.doesNotMatch(reply.text, /Long running operation completed/, JSON.stringify(reply));
  });
});
