/**
 * Review 10 (grants of now), finding 2: a 2026-07-28 client's pooled session on a virtual server
 * answers every request with the token that OPENED it, verified again after each reload. OIDC
 * access tokens are short-lived: the subject's next token (same groups, so the same pool key)
 * finds the session its expired predecessor opened, and after any reload (or a revocation
 * resync, which bumps the same generation) each of its requests is refused as that expired
 * token would be: `token_expired`, although the token it presents is valid.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { modernHeaders, modernRequest } from './helpers/modern-client.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';

describe('review10 grants 2: the subject’s next token on a pooled virtual session', () => {
  let idp: TestOidcIssuer;
  let everything: EverythingServer;
  let proxy: RunningProxy;
  let dir: string;
  let env: Record<string, string>;
  const clock = new ManualClock();

  before(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    everything = await startEverything('streamableHttp');
    dir = mkdtempSync(join(tmpdir(), 'review10-grants-2-'));
    const file = join(dir, 'proxy.json');
    writeFileSync(
      file,
      JSON.stringify({
        servers: { everything: { url: everything.url, transport: 'streamable-http' } },
        virtualServers: { workspace: { servers: ['everything'] } },
        oidc: {
          issuers: [
            {
              issuer: idp.issuer,
              audience: AUDIENCE,
              claims: { groups: { staff: { servers: ['workspace', 'everything'] } } },
            },
          ],
        },
      }),
    );
    env = { MCP_PROXY_CONFIG: file, UPSTREAM_TIMEOUT_MS: '15000' };
    proxy = await startProxy(env, { clock });
  });
  after(async () => {
    await proxy?.close();
    await everything?.stop();
    await idp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // biome-ignore lint/suspicious/noExplicitAny: answers are arbitrary JSON.
  const listTools = async (token: string): Promise<{ status: number; body: any }> => {
    const body = modernRequest(1, 'tools/list');
    const response = await fetch(`${proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: `Bearer ${token}`,
        ...modernHeaders(body),
      },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  };
  const tokenFor = (lifetimeSeconds: number) => {
    const now = Math.floor(clock.now() / 1000);
    return idp.sign({ sub: 'rotating-subject', groups: ['staff'], iat: now, exp: now + lifetimeSeconds });
  };

  it('answers the valid token after a reload, not the refusal of the expired token that opened the session', async () => {
    const first = await tokenFor(60);
    const opened = await listTools(first);
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    // The first token expires (past the verifier's leeway); the client takes the next one.
    clock.advance(120_000);
    const second = await tokenFor(3600);
    const before = await listTools(second);
    assert.equal(before.status, 200, JSON.stringify(before.body));
    // A reload that changes nothing for this subject.
    proxy.app.reload(
      loadConfig({
        env: { PROXY_TOKEN: TEST_TOKEN, ALLOW_PRIVATE_NETWORKS: 'true', STORE: 'memory', ...env },
      }),
    );
    const afterReload = await listTools(second);
    assert.ok(
      afterReload.body.result?.tools?.length > 0,
      `a valid token was answered ${afterReload.status} ${JSON.stringify(afterReload.body)}`,
    );
  });
});
