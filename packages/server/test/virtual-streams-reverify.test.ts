/**
 * Review 10 (grants of now), finding 4: after a reload that changes an OIDC issuer's claim
 * mapping, a virtual server's GET stream keeps relaying the members its token saw BEFORE the
 * reload until the token has been verified again (client-streams.ts `#follow` sets the members
 * only once `current()` resolves). The changed mapping makes a new issuer, whose discovery and
 * key set are fetched again: for as long as the identity provider takes to answer (or times
 * out), a member the reload hid keeps writing to the stream. The stream should take no member
 * its grants of now may not see while they are being verified (fail closed).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import { type EverythingServer, startEverything } from './helpers/everything.ts';
import { type ConnectedClient, connectClient, serverTarget } from './helpers/mcp-client.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { featureStdio } from './helpers/virtual-proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';

function configOf(everythingUrl: string, issuer: string, staff: string[]): object {
  return {
    servers: { everything: { url: everythingUrl, transport: 'streamable-http' }, local: featureStdio() },
    virtualServers: { workspace: { servers: ['everything', 'local'] } },
    oidc: {
      issuers: [
        {
          issuer,
          audience: AUDIENCE,
          claims: {
            groups: {
              wide: { servers: ['workspace', 'everything', 'local'] },
              staff: { servers: staff },
            },
          },
        },
      ],
    },
  };
}

describe('review10 grants 4: a GET stream while its OIDC token is verified again', () => {
  let idp: TestOidcIssuer;
  let everything: EverythingServer;
  let proxy: RunningProxy;
  let dir: string;
  let file: string;
  let env: Record<string, string>;
  const clients: ConnectedClient[] = [];
  /** Holds the proxy's OIDC fetches while set (the identity provider is slow to answer). */
  let held: Promise<void> | undefined;
  let release: () => void = () => {};

  before(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    everything = await startEverything('streamableHttp');
    dir = mkdtempSync(join(tmpdir(), 'review10-grants-4-'));
    file = join(dir, 'proxy.json');
    writeFileSync(
      file,
      JSON.stringify(configOf(everything.url, idp.issuer, ['workspace', 'everything', 'local'])),
    );
    env = { MCP_PROXY_CONFIG: file, UPSTREAM_TIMEOUT_MS: '15000' };
    proxy = await startProxy(env, {
      oidcFetch: async (url) => {
        await held;
        const response = await fetch(url);
        return response.json();
      },
    });
  });
  after(async () => {
    release();
    for (const client of clients) await client.close().catch(() => {});
    await proxy?.close();
    await everything?.stop();
    await idp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('relays no message of a member the reload hid, while the token is verified again', async () => {
    // One subject, two tokens: `wide` keeps every member, `staff` loses `local` at the reload.
    const staffToken = await idp.sign({ sub: 'slow-idp-subject', groups: ['staff'] });
    const wideToken = await idp.sign({ sub: 'slow-idp-subject', groups: ['wide'] });
    // The staff stream opens first, so a member's message is written to it first.
    const staff = await connectClient(proxy, serverTarget('workspace'), { token: staffToken, roots: false });
    clients.push(staff);
    await staff.standaloneOpened(10_000);
    const wide = await connectClient(proxy, serverTarget('workspace'), { token: wideToken, roots: false });
    clients.push(wide);
    await wide.standaloneOpened(10_000);

    // `local` adds a tool (and tells the subject's sessions) a moment after answering.
    await wide.client.callTool({ name: 'local__grow', arguments: { delayMs: 1_500 } });
    // The identity provider is slow from now on; the reload takes `local` from `staff`.
    held = new Promise<void>((resolve) => {
      release = resolve;
    });
    writeFileSync(file, JSON.stringify(configOf(everything.url, idp.issuer, ['workspace', 'everything'])));
    proxy.app.reload(
      loadConfig({
        env: { PROXY_TOKEN: TEST_TOKEN, ALLOW_PRIVATE_NETWORKS: 'true', STORE: 'memory', ...env },
      }),
    );
    // The wide stream (which still sees `local`) hears the change: it was relayed by then.
    await wide.notifications.waitFor('notifications/tools/list_changed', 10_000);
    release();
    await staff.client.ping();
    assert.equal(
      staff.notifications.all('notifications/tools/list_changed').length,
      0,
      'the staff stream relayed a message of `local`, which the reload took from its grant',
    );
  });
});
