/**
 * `client.connections()` and `client.disconnect(server)` against the real proxy with its OAuth
 * broker on, in front of the OAuth test world (oidc-provider with revocation): what a "connected
 * accounts" page is built on (the proxy's docs/oauth.md).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  ALICE,
  BOB,
  callTool,
  connect,
  setupOAuth,
  subjectOf,
  upstreamTokens,
} from '../../server/test/helpers/oauth-proxy.ts';
import { InvalidInputError, MCPProxyClient, UpstreamAuthError } from '../src/index.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function clientFor(proxyUrl: string, token: string, mcpServerUrl: string): MCPProxyClient {
  const client = new MCPProxyClient({ proxyUrl, proxyToken: token, mcpServerUrl, transport: 'http' });
  cleanup.push(() => client.close());
  return client;
}

describe('client.connections() and client.disconnect()', () => {
  it('lists the principal’s sign-ins (no token), ends one, and the next call asks again', async () => {
    const s = await setupOAuth(cleanup);
    await connect(s, ALICE, 'alice');
    assert.equal(subjectOf(await callTool(s, ALICE, 'whoami')), 'alice');
    const alice = clientFor(s.proxy.url, ALICE, s.world.upstream.url);
    const bob = clientFor(s.proxy.url, BOB, s.world.upstream.url);
    const server = new URL(s.world.upstream.url).host;

    const listed = await alice.connections();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]?.server, server);
    assert.equal(listed[0]?.issuer, s.world.issuer);
    assert.deepEqual(listed[0]?.scopes, ['mcp:read']);
    assert.equal(listed[0]?.refreshable, true);
    const [token] = upstreamTokens(s);
    assert.ok(token && !JSON.stringify(listed).includes(token));
    assert.deepEqual(await bob.connections(), []);

    const refused = await bob.disconnect(server).then(
      () => assert.fail('bob ended alice’s connection'),
      (error: unknown) => error,
    );
    assert.ok(refused instanceof InvalidInputError);
    assert.equal(refused.code, 'oauth_connection_not_found');
    assert.equal(refused.status, 404);

    assert.deepEqual(await alice.disconnect(server), [
      { server, resource: s.world.upstream.url, revocation: 'revoked' },
    ]);
    assert.deepEqual(await alice.connections(), []);
    const again = await alice.callTool('whoami').then(
      () => assert.fail('called without a sign-in'),
      (error: unknown) => error,
    );
    assert.ok(again instanceof UpstreamAuthError);
    assert.equal(again.code, 'upstream_auth_required');
  });

  it('refuses an empty server name before sending anything', async () => {
    const client = clientFor('http://127.0.0.1:9', ALICE, 'http://127.0.0.1:9/mcp');
    assert.throws(() => client.disconnect(''), InvalidInputError);
  });
});
