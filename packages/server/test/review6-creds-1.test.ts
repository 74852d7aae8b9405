/**
 * Review 7 (credentials), finding CREDS-1: review6 OAUTH-1 made a disconnect reach the sessions
 * the proxy holds on /proxy, /mcp and /ws (credentials/live-credential.ts), but not the sessions a
 * virtual server holds to its members (virtual/member-sessions.ts). Those are opened with the
 * broker's token as a fixed string (credentials/member-credentials.ts `supply`), keyed by its
 * hash: after DELETE /oauth/connections the next request opens another session, and the one
 * opened with the ended token lives on — its HTTP+SSE stream (authenticated once with the ended
 * token) still open upstream, whatever it sends still routed to the principal's virtual GET
 * streams — until the idle sweep.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import {
  disconnect,
  proxyCall,
  signInFrom,
  startBrokerProxy,
  startOAuthSseServer,
} from './helpers/oauth-sse-server.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('CREDS-1: a disconnect reaches the sessions a virtual server holds to its members', () => {
  // `auth: oauth`: the next request finds no token and asks for a sign-in without reaching the
  // member's session; that session must end all the same.
  for (const auth of [undefined, 'oauth'] as const) {
    it(`the member session opened with the ended token is closed by the next request (auth: ${auth ?? 'unset'})`, async () => {
      const member = await startOAuthSseServer(cleanup);
      const dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-creds-1-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(
        join(dir, 'proxy.json'),
        JSON.stringify({
          servers: { files: { url: member.url, transport: 'sse', ...(auth ? { auth } : {}) } },
          virtualServers: { workspace: { servers: ['files'] } },
        }),
      );
      const { proxy, publicUrl } = await startBrokerProxy(cleanup, {
        MCP_PROXY_CONFIG: join(dir, 'proxy.json'),
      });
      let id = 1;
      const call = () =>
        proxyCall(
          proxy.url,
          { server: 'workspace' },
          { id: id++, method: 'tools/call', params: { name: 'files__x', arguments: {} } },
        );

      await signInFrom(publicUrl, await call());
      const served = await call();
      assert.equal(served.body?.result?.content?.[0]?.text, 'served', JSON.stringify(served.body));
      assert.equal(member.streams.length, 1, 'one member session, authenticated with at-1');

      await disconnect(proxy.url, 'files');

      // The next request through the virtual server: as on /proxy and /mcp (OAUTH-1), the session
      // authenticated with the ended token must serve nobody any more.
      const after = await call();
      assert.equal(after.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(after.body));
      await eventually(() => member.streams[0]?.closed, {
        timeoutMs: 3000,
        what: "the member's stream opened with the ended token to close upstream",
      });
    });
  }
});
