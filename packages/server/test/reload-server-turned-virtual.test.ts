/**
 * Review 10 (grants of now), finding 3: a reload that turns the configured server `v` into a
 * virtual server `v` (the old one removed, or re-pointed under another name) leaves a `/ws`
 * socket opened to the configured server open and still talking to the removed upstream: the
 * reload's decision asks the virtual servers first about `server:v`
 * (`virtual.stillReaches(key) ?? …`, app.ts), which ignores that the configured server `v` was
 * removed (`changed`), and `virtual.follows('server:v')` exempts it from a changed tool grant
 * although its tool filter was fixed at the handshake.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connectWs, type WsPeer } from './helpers/modern-client.ts';
import { featureStdio, startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const APP = 'https://app.example';
const TOKEN = 'review10-grants-3-token-0123456789abcd';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

/** Before: `v` is server-everything, the token may call its `echo` only. */
function named(everythingUrl: string): object {
  return {
    servers: { v: { url: everythingUrl, transport: 'streamable-http' }, local: featureStdio() },
    tokens: [{ sha256: sha256(TOKEN), servers: ['v', 'local'], tools: ['echo'] }],
  };
}

/** After: server-everything is gone; `v` is a virtual server over `local`; the tool grant changed. */
function virtualized(): object {
  return {
    servers: { local: featureStdio() },
    virtualServers: { v: { servers: ['local'] } },
    tokens: [{ sha256: sha256(TOKEN), servers: ['v', 'local'], tools: ['local__pid'] }],
  };
}

describe('review10 grants 3: a configured server turned virtual by a reload', () => {
  let world: VirtualProxy;
  let peer: WsPeer | undefined;

  before(async () => {
    world = await startVirtualProxy((url) => named(url), { CORS_ORIGINS: APP });
  });
  after(async () => {
    await peer?.close().catch(() => {});
    await world?.stop();
  });

  it('ends the socket to the removed configured server', async () => {
    peer = await connectWs({ url: world.proxy.url, token: TOKEN }, { server: 'v' }, APP);
    peer.send({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    await peer.next((frame) => frame.id === 0);
    peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    peer.send({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'echo', arguments: { message: 'before' } },
    });
    assert.match(JSON.stringify((await peer.next((frame) => frame.id === 1)).result), /before/);

    world.reload(virtualized());
    // The configured server `v` no longer exists and the token's tool grant changed: what was
    // open to it ends (4401), as for any removed server. Its next call must not reach it.
    let closedCode: number | undefined;
    void peer.closed.then(({ code }) => {
      closedCode = code;
    });
    peer.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'echo', arguments: { message: 'after' } },
    });
    const outcome = await Promise.race([
      peer.closed.then(({ code }) => ({ closed: code })),
      peer.next((frame) => frame.id === 2).then((frame) => ({ frame })),
    ]);
    assert.ok(
      !('frame' in outcome && /after/.test(JSON.stringify(outcome.frame.result ?? null))),
      `the removed server still answered on the open socket: ${JSON.stringify(outcome)} (closed: ${closedCode})`,
    );
  });
});
