/**
 * Review 6 (virtual servers), finding 4: a reload that takes a virtual server away from a token
 * ends its calls in flight on `POST /proxy` but not on `/servers/{name}/mcp`. The endpoint
 * returns to the virtual handler before it sets `request.targetKey` (surfaces/mcp/endpoint.ts),
 * so `LiveRequests.endUnreachable` judges the request with no target and keeps it: a member
 * call the token may no longer make through the virtual server runs to its end. The same holds
 * for an OIDC principal whose group a reload narrows (its grants are judged again per holding,
 * which also reads `request.targetKey`).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { compileCacheEnv } from './helpers/compile-cache.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { postProxy, type RunningProxy, startProxy } from './helpers/proxy.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);
const TOKEN = 'review6-virtual-reload-token-0123456789';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const AUDIENCE = 'https://mcp-proxy.test';
const EVERYTHING_SERVER = {
  everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: compileCacheEnv() },
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

describe('review6 virtual 4: a reload ends what it takes away on /servers/{virtual}/mcp too', () => {
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
