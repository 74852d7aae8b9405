/**
 * Review 6 (links) finding 3: since 96f9071 the broker runs whenever PUBLIC_URL is set, so a
 * deployment that set PUBLIC_URL for its OIDC resource metadata now runs OAuth discovery on every
 * upstream 401 (forwarder.ts → broker.required → discovery.ts `discover`, before any offer cap:
 * broker.ts `#begin` counts only once metadata was found). A server answering a plain 401 (an
 * API key missing or expired, no OAuth anywhere) is asked up to four metadata documents per call
 * and nothing remembers that it has none, so every caller request costs the upstream about five:
 * one call, four discovery GETs. The caller still gets the same `upstream_unauthorized` as
 * before; only the load on the upstream grew.
 * Real parts: a node:http upstream on loopback that answers 401 to everything.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { STRANGER_OFFERS_PER_SERVER } from '../src/credentials/pending-sign-ins.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

const CALLS = 10;

/** An upstream answering a plain 401 to everything, and the requests it saw. */
async function plain401Upstream(): Promise<{ readonly origin: string; readonly seen: string[] }> {
  const seen: string[] = [];
  const upstream = createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`);
    request.resume();
    response.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
    response.end('{"error":"missing api key"}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
  return { origin: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, seen };
}

/** A proxy with PUBLIC_URL set (e.g. for the OIDC resource metadata), OAUTH_BROKER left unset. */
async function defaultBrokerProxy() {
  const port = await freePort();
  const proxy = await startProxy({ PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` });
  cleanup.push(() => proxy.close());
  return proxy;
}

describe('review6 links 3: a plain 401 with the broker on by default', () => {
  it('does not multiply the requests a 401-answering upstream receives', async () => {
    const { origin, seen } = await plain401Upstream();
    const upstreamUrl = `${origin}/mcp`;
    const proxy = await defaultBrokerProxy();
    for (let id = 1; id <= CALLS; id++) {
      const reply = await postProxy(proxy, {
        mcp_server_url: upstreamUrl,
        jsonrpc: '2.0',
        id,
        method: 'tools/list',
      });
      assert.equal(reply.status, 401, JSON.stringify(reply.body));
      assert.equal(reply.body.error.data.code, 'upstream_unauthorized');
    }
    const calls = seen.filter((line) => !line.includes('/.well-known/')).length;
    assert.ok(calls >= CALLS, `the upstream saw the calls: ${seen.join(', ')}`);
    // The server's lack of OAuth metadata may be learnt once, not once per call.
    assert.ok(
      seen.length <= calls + 4,
      `${CALLS} calls cost the upstream ${seen.length} requests: ${seen.join(', ')}`,
    );
  });

  it("counts a stranger's discovery against the principal's caps: new paths cannot multiply it either", async () => {
    const { origin, seen } = await plain401Upstream();
    const proxy = await defaultBrokerProxy();
    const paths = STRANGER_OFFERS_PER_SERVER + 2;
    const codes: string[] = [];
    for (let id = 1; id <= paths; id++) {
      const reply = await postProxy(proxy, {
        mcp_server_url: `${origin}/mcp/${id}`,
        jsonrpc: '2.0',
        id,
        method: 'tools/list',
      });
      codes.push(reply.body.error?.data?.code);
    }
    const discoveries = seen.filter((line) => line.includes('/.well-known/')).length;
    // Four metadata GETs per discovery (two resource, two authorization server documents).
    assert.ok(
      discoveries <= STRANGER_OFFERS_PER_SERVER * 4,
      `${paths} paths cost the upstream ${discoveries} metadata requests: ${seen.join(', ')}`,
    );
    assert.deepEqual(
      codes.slice(0, STRANGER_OFFERS_PER_SERVER),
      Array(STRANGER_OFFERS_PER_SERVER).fill('upstream_unauthorized'),
    );
    assert.deepEqual(codes.slice(STRANGER_OFFERS_PER_SERVER), [
      'oauth_sign_in_limited',
      'oauth_sign_in_limited',
    ]);
  });
});
