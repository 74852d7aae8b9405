/**
 * Issue 20: what changes on the client's side reaches the members. A client's
 * `notifications/roots/list_changed` is forwarded to the members that asked it for roots
 * (server-everything asks again), and after a reload an open GET stream carries only the members
 * its principal sees now on that virtual server (a member taken out of it stops reaching the
 * stream, while the member session stays for another virtual server). SDK v1 clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { type ConnectedClient, connectClient, serverTarget } from './helpers/mcp-client.ts';
import { featureStdio, startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

/** Three configured servers; `workspace` has the members given. */
function configWith(everythingUrl: string, workspace: string[]): object {
  return {
    servers: {
      everything: { url: everythingUrl, transport: 'streamable-http' },
      local: featureStdio(),
      spare: featureStdio(),
    },
    virtualServers: {
      roomy: { servers: ['everything'] },
      workspace: { servers: workspace },
      solo: { servers: ['local'] },
    },
  };
}

describe('client-side changes through a virtual server', () => {
  let world: VirtualProxy;
  const clients: ConnectedClient[] = [];
  const connect = async (name: string, roots = false) => {
    const connected = await connectClient(world.proxy, serverTarget(name), { roots });
    clients.push(connected);
    return connected;
  };

  before(async () => {
    world = await startVirtualProxy((url) => configWith(url, ['local', 'spare']));
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await world?.stop();
  });

  it('tells the members that asked for roots that the client’s roots changed', async () => {
    const connected = await connect('roomy', true);
    await connected.standaloneOpened(10_000);
    const roots = await connected.client.callTool({ name: 'everything__get-roots-list', arguments: {} });
    assert.match(JSON.stringify(roots.content), /matrix-root/);
    const before = connected.rootsRequests();
    assert.ok(before > 0, 'the member asked for roots');
    // The test client declares roots without listChanged (its SDK then refuses to send one):
    // the notification goes straight onto its transport, as a client declaring it sends it.
    await connected.client.transport?.send({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    // server-everything asks again on the change, outside any request: on the GET stream.
    await eventually(() => connected.rootsRequests() > before, { what: 'roots/list asked again' });
  });

  it('narrows an open GET stream to the members its principal sees after a reload', async () => {
    const workspace = await connect('workspace');
    const solo = await connect('solo');
    await Promise.all([workspace.standaloneOpened(10_000), solo.standaloneOpened(10_000)]);
    // `local` leaves `workspace`; the principal still reaches it through `solo`, so its member
    // session (and the fixture's process) stays.
    world.reload(configWith(world.everything.url, ['spare']));
    await solo.client.callTool({ name: 'local__grow', arguments: { delayMs: 50 } });
    await solo.notifications.waitFor('notifications/tools/list_changed', 10_000);
    // Both streams were open when it came: the workspace one no longer has `local`.
    await solo.client.ping();
    assert.equal(workspace.notifications.all('notifications/tools/list_changed').length, 0);
  });
});
