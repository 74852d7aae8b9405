/**
 * Issue 20: `/ws?server=<virtual>` is served like a named server. Members: server-everything
 * (Streamable HTTP) and the feature fixture (stdio). A 2025 client on the socket lists and calls
 * the merged tools, is asked a member's sampling on the socket and answers it there, and gets a
 * member's list change; a principal whose grants do not reach the virtual server is refused as
 * for an unknown server.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually } from './helpers/eventually.ts';
import { connectWs, modernRequest, type WsPeer } from './helpers/modern-client.ts';
import { type RunningProxy, TEST_TOKEN } from './helpers/proxy.ts';
import { featureStdio, startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const APP = 'https://app.example';
/** Reaches the `everything` server only, not the virtual server. */
const NO_WORKSPACE = 'virtual-ws-no-workspace-token-0123456789';
/** Reaches everything; its own member sessions, opened by the test that uses it. */
const OWN_MEMBERS = 'virtual-ws-own-members-token-0123456789';
const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

describe('a virtual server on /ws', () => {
  let world: VirtualProxy;
  let proxy: RunningProxy;
  const peers: WsPeer[] = [];
  const open = async (token = TEST_TOKEN) => {
    const peer = await connectWs({ url: proxy.url, token }, { server: 'workspace' }, APP);
    peers.push(peer);
    peer.send({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: { sampling: {} },
        clientInfo: { name: 't', version: '1' },
      },
    });
    const initialized = await peer.next((frame) => frame.id === 0);
    assert.equal(initialized.result.serverInfo.name, 'workspace');
    peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return peer;
  };

  before(async () => {
    world = await startVirtualProxy(
      (url) => ({
        servers: { everything: { url, transport: 'streamable-http' }, local: featureStdio() },
        virtualServers: { workspace: { servers: ['everything', 'local'] } },
        tokens: [
          { sha256: sha256(TEST_TOKEN) },
          { sha256: sha256(NO_WORKSPACE), servers: ['everything'] },
          { sha256: sha256(OWN_MEMBERS) },
        ],
      }),
      { CORS_ORIGINS: APP },
    );
    proxy = world.proxy;
  });
  after(async () => {
    for (const peer of peers) await peer.close().catch(() => {});
    await world?.stop();
  });

  it('lists and calls the merged tools, and asks the socket a member’s sampling', async () => {
    const peer = await open();
    peer.send({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const listed = await peer.next((frame) => frame.id === 1);
    const names: string[] = listed.result.tools.map((tool: { name: string }) => tool.name);
    assert.ok(names.includes('everything__echo') || names.includes('local__echo'), names.join());
    peer.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: {
        name: 'everything__trigger-sampling-request',
        arguments: { prompt: 'the sea', maxTokens: 10 },
      },
    });
    const asked = await peer.next((frame) => frame.method === 'sampling/createMessage');
    assert.match(String(asked.id), /^mcpp-ask-/, 'asked under an id of the proxy’s own');
    peer.send({
      jsonrpc: '2.0',
      id: asked.id,
      result: { role: 'assistant', model: 'ws-model', content: { type: 'text', text: 'waves' } },
    });
    const answered = await peer.next((frame) => frame.id === 2);
    assert.match(JSON.stringify(answered.result), /ws-model/, 'the socket’s answer reached the member');
  });

  it('carries a member’s list change outside any request', async () => {
    const peer = await open();
    peer.send({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'local__grow', arguments: { delayMs: 20 } },
    });
    await peer.next((frame) => frame.id === 3);
    await peer.next((frame) => frame.method === 'notifications/tools/list_changed');
  });

  it('asks a 2026-07-28 client on the socket a member’s sampling as an input round', async () => {
    const peer = await connectWs(proxy, { server: 'workspace' }, APP);
    peers.push(peer);
    const call = {
      name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'the sky', maxTokens: 10 },
    };
    peer.send(modernRequest(10, 'tools/call', call));
    const round = await peer.next((frame) => frame.id === 10);
    assert.equal(round.result.resultType, 'input_required', JSON.stringify(round));
    const [key, asked] =
      Object.entries(round.result.inputRequests as Record<string, { method: string }>)[0] ?? [];
    assert.equal(asked?.method, 'sampling/createMessage');
    const answer = { role: 'assistant', model: 'modern-ws-model', content: { type: 'text', text: 'blue' } };
    peer.send(
      modernRequest(11, 'tools/call', {
        ...call,
        requestState: round.result.requestState,
        inputResponses: { [key as string]: answer },
      }),
    );
    const done = await peer.next((frame) => frame.id === 11);
    assert.equal(done.result.resultType, 'complete');
    assert.match(JSON.stringify(done.result), /modern-ws-model/, 'the retry’s answer reached the member');
  });

  it('refuses a member’s server request the client did not declare', async () => {
    // The feature fixture asks `roots/list` once initialized (the proxy declares roots to
    // members); this client declared sampling only, so the member is refused, not left waiting.
    const peer = await open(OWN_MEMBERS);
    let id = 100;
    const roots = await eventually(
      async () => {
        peer.send({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'local__roots' } });
        const answer = await peer.next((frame) => frame.id === id);
        const text: string = answer.result?.content?.[0]?.text ?? '';
        return text.includes('error') && text;
      },
      { intervalMs: 200, what: 'the member’s roots/list refused' },
    );
    assert.match(roots, /error/);
    assert.equal(
      peer.frames.find((frame) => frame.method === 'roots/list'),
      undefined,
      'never sent to the socket',
    );
  });

  it('refuses a principal whose grants do not reach it, as an unknown server', async () => {
    const url = `${proxy.url.replace('http', 'ws')}/ws?server=workspace`;
    const ws = new WebSocket(url, ['mcp', `proxy-token.${NO_WORKSPACE}`], { origin: APP });
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        ws.terminate();
      });
      ws.once('open', () => reject(new Error('the handshake was accepted')));
      ws.once('error', () => {});
    });
    assert.equal(status, 404);
  });
});
