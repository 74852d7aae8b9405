/**
 * Issue 20: open virtual sessions follow grant changes. A `/ws?server=<virtual>` socket (either
 * era) answers each request with the grants its principal has now: after a reload that narrows
 * a static token's `servers` or `tools` grant, a hidden member or tool looks unknown at once on
 * the socket (which stays open) and its list no longer shows it; a widened grant shows up on the
 * next list. An OIDC principal's open socket and GET stream follow its token's grants under the
 * reloaded claim mapping, judged per credential: two tokens of one subject keep their own view.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type ConnectedClient, connectClient, serverTarget } from './helpers/mcp-client.ts';
import { connectWs, MODERN, modernHeaders, modernRequest, type WsPeer } from './helpers/modern-client.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { TEST_TOKEN } from './helpers/proxy.ts';
import { listedTools, openVirtualSocket, socketAsker } from './helpers/virtual-clients.ts';
import { featureStdio, startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const APP = 'https://app.example';
const AUDIENCE = 'https://mcp-proxy.test';
/** Its `servers` grant names `local` or not, as the test reloads it. */
const MEMBERS_TOKEN = 'virtual-grants-members-token-0123456789';
/** Its `tools` grant names `local__echo` or not, as the test reloads it. */
const TOOLS_TOKEN = 'virtual-grants-tools-token-0123456789ab';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** What may change between reloads. */
interface Grants {
  readonly membersToken: string[];
  readonly toolsToken: string[];
  /** The OIDC group `staff`'s servers (`wide` keeps every member). */
  readonly staff: string[];
  /** The virtual server's own `tools` allowlist (the operator's policy), if any. */
  readonly allowlist?: string[];
}

const WIDE: Grants = {
  membersToken: ['workspace', 'everything', 'local'],
  toolsToken: ['everything__echo', 'local__echo'],
  staff: ['workspace', 'everything', 'local'],
};

function configOf(everythingUrl: string, issuer: string, grants: Grants): object {
  return {
    servers: { everything: { url: everythingUrl, transport: 'streamable-http' }, local: featureStdio() },
    virtualServers: {
      workspace: {
        servers: ['everything', 'local'],
        ...(grants.allowlist === undefined ? {} : { tools: grants.allowlist }),
      },
    },
    tokens: [
      { sha256: sha256(TEST_TOKEN) },
      { sha256: sha256(MEMBERS_TOKEN), servers: grants.membersToken },
      { sha256: sha256(TOOLS_TOKEN), tools: grants.toolsToken },
    ],
    oidc: {
      issuers: [
        {
          issuer,
          audience: AUDIENCE,
          claims: {
            groups: {
              wide: { servers: ['workspace', 'everything', 'local'] },
              staff: { servers: grants.staff },
            },
          },
        },
      ],
    },
  };
}

/** The names a tools/list answer carries. */
// biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
const toolNames = (answer: any): string[] => answer.result.tools.map((tool: { name: string }) => tool.name);

describe('open virtual sessions follow grant changes', () => {
  let world: VirtualProxy;
  let idp: TestOidcIssuer;
  const peers: WsPeer[] = [];
  const clients: ConnectedClient[] = [];
  const { ask, listTools } = socketAsker();
  const reload = (grants: Partial<Grants>) =>
    world.reload(configOf(world.everything.url, idp.issuer, { ...WIDE, ...grants }));

  /** A 2025-era client's socket to `workspace`, initialized. */
  const openSocket = async (token: string) => {
    const peer = await openVirtualSocket(world.proxy.url, token, 'workspace', APP);
    peers.push(peer);
    return peer;
  };
  const echo = (peer: WsPeer, name: string, modern = false) =>
    ask(peer, 'tools/call', { name, arguments: { message: 'hi' } }, modern);

  before(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    world = await startVirtualProxy((url) => configOf(url, idp.issuer, WIDE), { CORS_ORIGINS: APP });
  });
  after(async () => {
    for (const peer of peers) await peer.close().catch(() => {});
    for (const client of clients) await client.close().catch(() => {});
    await world?.stop();
    await idp?.stop();
  });

  it('hides a member a reload takes out of a static token’s grant on its open socket, at once', async () => {
    reload({});
    const peer = await openSocket(MEMBERS_TOKEN);
    assert.ok((await listTools(peer)).includes('local__echo'));
    reload({ membersToken: ['workspace', 'everything'] });
    const narrowed = await listTools(peer);
    assert.ok(narrowed.includes('everything__echo'), narrowed.join());
    assert.ok(!narrowed.some((name) => name.startsWith('local__')), narrowed.join());
    const hidden = await echo(peer, 'local__echo');
    assert.match(hidden.error?.message ?? '', /Unknown tool: local__echo/, JSON.stringify(hidden));
    // Widened again: the next list and call have it, on the same socket.
    reload({});
    assert.ok((await listTools(peer)).includes('local__echo'));
    assert.match(JSON.stringify((await echo(peer, 'local__echo')).result), /hi/);
  });

  it('hides a tool a reload takes out of a static token’s grant, on a socket that stays open', async () => {
    reload({});
    const peer = await openSocket(TOOLS_TOKEN);
    const modern = await connectWs(
      { url: world.proxy.url, token: TOOLS_TOKEN },
      { server: 'workspace' },
      APP,
    );
    peers.push(modern);
    assert.deepEqual((await listTools(peer)).sort(), ['everything__echo', 'local__echo']);
    assert.deepEqual((await listTools(modern, true)).sort(), ['everything__echo', 'local__echo']);
    reload({ toolsToken: ['everything__echo'] });
    for (const [socket, isModern] of [
      [peer, false],
      [modern, true],
    ] as const) {
      assert.deepEqual(await listTools(socket, isModern), ['everything__echo']);
      const hidden = await echo(socket, 'local__echo', isModern);
      assert.match(hidden.error?.message ?? '', /Unknown tool: local__echo/, JSON.stringify(hidden));
      assert.match(JSON.stringify((await echo(socket, 'everything__echo', isModern)).result), /hi/);
    }
    reload({});
    assert.deepEqual((await listTools(modern, true)).sort(), ['everything__echo', 'local__echo']);
  });

  it('hides a tool a reload takes out of the virtual server’s allowlist, on an open socket', async () => {
    reload({});
    const peer = await openSocket(TEST_TOKEN);
    assert.ok((await listTools(peer)).includes('local__echo'));
    reload({ allowlist: ['everything__echo', 'local__pid'] });
    assert.deepEqual((await listTools(peer)).sort(), ['everything__echo', 'local__pid']);
    const hidden = await echo(peer, 'local__echo');
    assert.match(hidden.error?.message ?? '', /Unknown tool: local__echo/, JSON.stringify(hidden));
  });

  it('narrows an OIDC principal’s open socket and GET stream by the token’s grants of now', async () => {
    reload({});
    // One subject, two tokens: `wide` keeps every member, `staff` loses `local` at the reload.
    const wideToken = await idp.sign({ sub: 'grants-subject', groups: ['wide'] });
    const staffToken = await idp.sign({ sub: 'grants-subject', groups: ['staff'] });
    // The staff stream opens first, so a member's message is written to it first.
    const staff = await connectClient(world.proxy, serverTarget('workspace'), {
      token: staffToken,
      roots: false,
    });
    clients.push(staff);
    await staff.standaloneOpened(10_000);
    const wide = await connectClient(world.proxy, serverTarget('workspace'), {
      token: wideToken,
      roots: false,
    });
    clients.push(wide);
    await wide.standaloneOpened(10_000);
    const socket = await openSocket(staffToken);
    assert.ok((await listTools(socket)).includes('local__echo'));

    reload({ staff: ['workspace', 'everything'] });
    // The socket's requests and the 2025 session's and a 2026-07-28 client's see `local` no more.
    assert.ok(!(await listTools(socket)).some((name) => name.startsWith('local__')));
    const listed = await listedTools(staff.client);
    assert.ok(listed.includes('everything__echo') && !listed.some((name) => name.startsWith('local__')));
    const modernTools: string[] = [];
    let modernCursor: string | undefined;
    do {
      const body = modernRequest(1, 'tools/list', modernCursor === undefined ? {} : { cursor: modernCursor });
      const answer = await fetch(`${world.proxy.url}/servers/workspace/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'x-proxy-token': staffToken,
          ...modernHeaders(body),
        },
        body: JSON.stringify(body),
      }).then((response) => response.json() as Promise<{ result: { tools: []; nextCursor?: string } }>);
      modernTools.push(...toolNames(answer));
      modernCursor = answer.result.nextCursor;
    } while (modernCursor !== undefined);
    assert.ok(
      modernTools.includes('everything__echo') && !modernTools.some((name) => name.startsWith('local__')),
      `${MODERN}: ${modernTools.join()}`,
    );

    // `local` tells the subject's sessions its tools changed: the wide stream hears it, the
    // staff stream (written first) does not.
    await wide.client.callTool({ name: 'local__grow', arguments: { delayMs: 0 } });
    await wide.notifications.waitFor('notifications/tools/list_changed', 10_000);
    await staff.client.ping();
    assert.equal(staff.notifications.all('notifications/tools/list_changed').length, 0);
  });
});
