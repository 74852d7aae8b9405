/**
 * Review 10 (grants of now), finding 5: a reload that changes a config token's `tools` grant
 * (here only WIDENS it) leaves its `/ws` socket on a virtual server open, as the change means
 * (`virtual.follows`), but still ends the principal's member sessions behind it
 * (`sessions.endRevoked(keepOpen)` in app.ts: a member session's key is the member's, which
 * `follows` does not exempt). The socket's next request opens them afresh, without what the
 * client set up through the socket: its resource subscription is silently gone, and the client,
 * whose socket never closed, has no reason to subscribe again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connectWs, type WsPeer } from './helpers/modern-client.ts';
import { featureStdio, startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const APP = 'https://app.example';
const TOKEN = 'review10-grants-5-token-0123456789abcd';
const COUNTER = 'mcpp://local/fixture://counter';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

function configOf(everythingUrl: string, tools: string[]): object {
  return {
    servers: { everything: { url: everythingUrl, transport: 'streamable-http' }, local: featureStdio() },
    virtualServers: { workspace: { servers: ['everything', 'local'] } },
    tokens: [{ sha256: sha256(TOKEN), tools }],
  };
}

describe('review10 grants 5: a virtual socket kept open across a tool-grant change', () => {
  let world: VirtualProxy;
  let peer: WsPeer | undefined;
  let id = 0;

  before(async () => {
    world = await startVirtualProxy((url) => configOf(url, ['local__touch']), { CORS_ORIGINS: APP });
  });
  after(async () => {
    await peer?.close().catch(() => {});
    await world?.stop();
  });

  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  const ask = async (method: string, params: object): Promise<any> => {
    const sent = ++id;
    peer?.send({ jsonrpc: '2.0', id: sent, method, params });
    return peer?.next((frame) => frame.id === sent);
  };
  const updates = () =>
    peer?.frames.filter((frame) => frame.method === 'notifications/resources/updated').length ?? 0;

  it('keeps the subscription the client made through the socket', async () => {
    peer = await connectWs({ url: world.proxy.url, token: TOKEN }, { server: 'workspace' }, APP);
    const init = await ask('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 't', version: '1' },
    });
    assert.ok(init.result, JSON.stringify(init));
    peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const subscribed = await ask('resources/subscribe', { uri: COUNTER });
    assert.ok(subscribed.result, JSON.stringify(subscribed));
    assert.ok((await ask('tools/call', { name: 'local__touch', arguments: {} })).result);
    await peer.next((frame) => frame.method === 'notifications/resources/updated');
    assert.equal(updates(), 1);

    // Only widened: `local__echo` joins the grant.
    world.reload(configOf(world.everything.url, ['local__touch', 'local__echo']));
    const touched = await ask('tools/call', { name: 'local__touch', arguments: {} });
    assert.ok(touched.result, JSON.stringify(touched));
    // The member answers the touch after notifying its subscribers: the update is due by now, or
    // shortly after on the socket's stream (waited for, up to 10 s, only when it is missing).
    const second = new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(poll);
        clearTimeout(limit);
        resolve();
      };
      const poll = setInterval(() => {
        if (updates() >= 2) done();
      }, 20);
      const limit = setTimeout(done, 10_000);
    });
    await second;
    assert.equal(updates(), 2, 'the subscription made on the open socket was dropped by the reload');
  });
});
