/**
 * What the broker's OAuth discovery may cost an upstream, and what it remembers: a server answering
 * 401 is asked its metadata once, not per call; offer and registration caps are met before any
 * fetch; a transient metadata failure, or one principal's bare 401, is not remembered as "no
 * OAuth" for everyone. Real loopback servers (plain node:http and the hostile-server helper).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { SIGN_INS_PER_PRINCIPAL, STRANGER_OFFERS_PER_SERVER } from '../src/credentials/pending-sign-ins.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { authServerMetadata, json, serveHostile } from './helpers/hostile-server.ts';
import { freePort } from './helpers/net.ts';
import { startBrokerProxy } from './helpers/oauth-sse-server.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A node:http server on a loopback port, closed after the test; returns its origin. */
async function listen(handler: (request: IncomingMessage, response: ServerResponse) => void) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A server that answers 401 to every call, naming its own (registering) authorization server. */
async function hostile(): Promise<{ readonly base: string; readonly metadataFetches: () => number }> {
  let metadataFetches = 0;
  let base = '';
  base = await serveHostile(cleanup, (_req, res, url) => {
    if (url.pathname === '/prm/mcp') {
      metadataFetches++;
      return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [`${base}/as`] });
    }
    if (url.pathname === '/.well-known/oauth-authorization-server/as') {
      metadataFetches++;
      return json(res, 200, authServerMetadata(base, `${base}/as`));
    }
    if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
    return json(res, 401, {}, { 'www-authenticate': `Bearer resource_metadata="${base}/prm/mcp"` });
  });
  return { base, metadataFetches: () => metadataFetches };
}

/** A proxy with the broker on, for alice (its PUBLIC_URL its own origin), closed after the test. */
async function brokerProxy(env: Record<string, string> = {}) {
  return (await startBrokerProxy(cleanup, env)).proxy;
}

/** An authorization server: RFC 8414 metadata and an open registration endpoint. */
async function authorizationServer(): Promise<string> {
  let origin = '';
  origin = await listen((request, response) => {
    request.resume();
    if (request.method === 'GET' && request.url === '/.well-known/oauth-authorization-server') {
      return json(response, 200, {
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        registration_endpoint: `${origin}/reg`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
      });
    }
    if (request.method === 'POST' && request.url === '/reg') {
      return json(response, 201, { client_id: 'proxy-client', token_endpoint_auth_method: 'none' });
    }
    json(response, 404, { error: 'not_found' });
  });
  return origin;
}

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
describe('review6 links 3: a plain 401 with the broker on by default', () => {
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

/**
 * Review 6 (OAuth broker), finding OAUTH-2: the proxy-wide cap on dynamic client registrations
 * (1 000 a day, credentials/registration.ts admitRegistration) has no per-principal share, unlike
 * the sign-in offers (review oauth6 R3). A principal may cause 10 registrations an hour, so five
 * principals naming hostile authorization servers (each answers any registration) spend the
 * day's 1 000 in 20 hours; from then on NO principal can sign in to any authorization server the
 * proxy has not registered at yet (`oauth_sign_in_limited`), for up to a day.
 * The store is pre-spent as those principals would have left it (as the R3 test does for offers).
 */
describe("OAUTH-2: other principals cannot spend everyone's dynamic registrations", () => {
  const BOB = 'bob-proxy-token-0123456789abcdefgh';

  /**
   * A hostile MCP server on one loopback port: `/mcp{n}` refuses every call, naming its own
   * authorization server `/as{n}`, which registers anyone. Returns the base URL.
   */
  async function hostileServers(): Promise<string> {
    let base = '';
    base = await serveHostile(cleanup, (_req, res, url) => {
      const prm = /^\/prm\/mcp(\d+)$/.exec(url.pathname);
      if (prm)
        return json(res, 200, {
          resource: `${base}/mcp${prm[1]}`,
          authorization_servers: [`${base}/as${prm[1]}`],
        });
      const as = /^\/\.well-known\/oauth-authorization-server\/as(\d+)$/.exec(url.pathname);
      if (as) return json(res, 200, authServerMetadata(base, `${base}/as${as[1]}`));
      if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
      return json(
        res,
        401,
        {},
        { 'www-authenticate': `Bearer resource_metadata="${base}/prm${url.pathname}"` },
      );
    });
    return base;
  }

  /** A proxy (broker on, bob's token) whose store has the day's 1 000 registrations spent by others. */
  async function spentProxy() {
    const store = new MemoryStore();
    // 5 principals x 10 registrations an hour x 20 hours (the broker's store is namespaced `oauth:`).
    for (let i = 0; i < 1000; i++) await store.hit('oauth:regcount:all', 24 * 3600_000);
    const port = await freePort();
    const proxy = await startProxy(
      {
        PORT: String(port),
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: BOB,
        CORS_ORIGINS: APP,
        LOG_LEVEL: 'warn',
      },
      { store },
    );
    cleanup.push(() => proxy.close());
    return proxy;
  }

  /** Bob's call to `/mcp{n}`: the error code it gets (a sign-in link, or a limit). */
  async function codeOf(proxyUrl: string, base: string, n: number): Promise<unknown> {
    const reply = await postProxy(
      { url: proxyUrl, token: BOB },
      { mcp_server_url: `${base}/mcp${n}`, jsonrpc: '2.0', id: n, method: 'tools/list' },
      { origin: APP },
    );
    return reply.body?.error?.data?.code ?? JSON.stringify(reply.body);
  }

  it('a principal that never registered still gets a sign-in link when others spent the daily total', async () => {
    const base = await hostileServers();
    const proxy = await spentProxy();
    assert.equal(await codeOf(proxy.url, base, 1), 'upstream_auth_required');
  });

  it('past its own share (5 a day) a principal meets the spent total', async () => {
    const base = await hostileServers();
    const proxy = await spentProxy();
    // Each server has its own authorization server: each sign-in is a new registration.
    for (let n = 1; n <= 5; n++)
      assert.equal(await codeOf(proxy.url, base, n), 'upstream_auth_required', `#${n}`);
    assert.equal(await codeOf(proxy.url, base, 6), 'oauth_sign_in_limited');
  });
});

/**
 * Review 6 (OAuth broker), finding OAUTH-4: the sign-in offer caps are checked after discovery
 * (credentials/broker.ts:270 `discover` runs before :281 `admitOffer`). Once a principal met a
 * server's cap, every further call to it still makes the proxy fetch the protected resource
 * metadata (from any URL the 401 names) and the authorization server's metadata (up to three
 * URLs of any issuer the metadata names) before answering `oauth_sign_in_limited`: an upstream
 * answering 401 turns each refused call into 2-4 outbound requests to hosts it chooses, with no
 * cap. The cap could be looked at (not spent) before discovery.
 */
describe("OAUTH-4: a principal past a server's offer cap causes no more discovery", () => {
  /** A proxy with the broker on; `code(base)` is alice's call to that server's error code. */
  async function proxyFor() {
    const proxy = await brokerProxy();
    let id = 1;
    return async (base: string) => {
      const reply = await postProxy(
        { url: proxy.url, token: ALICE },
        { mcp_server_url: `${base}/mcp`, jsonrpc: '2.0', id: id++, method: 'tools/list' },
        { origin: APP },
      );
      return reply.body?.error?.data?.code as string;
    };
  }

  it('refused calls past the cap fetch no metadata', async () => {
    const server = await hostile();
    const code = await proxyFor();
    // A stranger server: 10 offers, then its cap.
    for (let i = 0; i < 10; i++) assert.equal(await code(server.base), 'upstream_auth_required');
    assert.equal(await code(server.base), 'oauth_sign_in_limited');
    const atCap = server.metadataFetches();
    for (let i = 0; i < 20; i++) assert.equal(await code(server.base), 'oauth_sign_in_limited');
    assert.equal(server.metadataFetches() - atCap, 0, 'metadata fetched for calls the cap refuses anyway');
  });

  it("past the principal's cap on strangers (30), a new server is refused before any fetch", async () => {
    const spent = [await hostile(), await hostile(), await hostile()];
    const fresh = await hostile();
    const code = await proxyFor();
    for (const server of spent) {
      for (let i = 0; i < 10; i++) assert.equal(await code(server.base), 'upstream_auth_required');
    }
    for (let i = 0; i < 5; i++) assert.equal(await code(fresh.base), 'oauth_sign_in_limited');
    assert.equal(fresh.metadataFetches(), 0, 'metadata fetched for calls the cap refuses anyway');
  });
});

/**
 * Review 7 (credentials), finding CREDS-3: for a server the principal is not a stranger to (one
 * the operator configured, or one it is connected to), the sign-in offer caps were looked at
 * before OAuth discovery and spent only after it (credentials/broker.ts `#begin`). Calls that
 * arrive together just below a cap each saw room, each ran discovery (metadata fetched from URLs
 * the upstream's 401 names), and all but the first were refused afterwards: the cap bounded the
 * links, not the outbound fetches. The fix spends the cap before discovery.
 * Real parts: a node:http upstream on loopback answering 401 and serving its own OAuth metadata.
 */
describe('CREDS-3: calls arriving together at a known server past its offer cap run no discovery', () => {
  const TOGETHER = 10;

  it('of calls racing for the last offer, only the admitted one fetches metadata', async () => {
    const server = await hostile();
    const dir = mkdtempSync(join(tmpdir(), 'creds-3-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'proxy.json');
    writeFileSync(config, JSON.stringify({ servers: { known: { url: `${server.base}/mcp` } } }));
    const proxy = await brokerProxy({ MCP_PROXY_CONFIG: config });
    let id = 1;
    const code = async () => {
      const reply = await postProxy(
        { url: proxy.url, token: ALICE },
        { server: 'known', jsonrpc: '2.0', id: id++, method: 'tools/list' },
        { origin: APP },
      );
      return String(reply.body?.error?.data?.code);
    };

    for (let i = 1; i < SIGN_INS_PER_PRINCIPAL - 1; i++) assert.equal(await code(), 'upstream_auth_required');
    // What one offer costs once the authorization server's metadata is known.
    const lastBefore = server.metadataFetches();
    assert.equal(await code(), 'upstream_auth_required');
    const before = server.metadataFetches();
    const perOffer = before - lastBefore;
    assert.ok(perOffer > 0, 'an offer runs discovery');

    // One offer left under the server's cap (30 a server); ten calls ask for it at once.
    const codes = await Promise.all(Array.from({ length: TOGETHER }, () => code()));
    assert.deepEqual(
      codes.toSorted(),
      [...new Array(TOGETHER - 1).fill('oauth_sign_in_limited'), 'upstream_auth_required'],
      codes.join(),
    );
    assert.equal(server.metadataFetches() - before, perOffer, 'calls the cap refused still ran discovery');
  });
});

/**
 * Review 8 (creds) finding 1: credentials/remembered-discovery.ts remembers "this server has no
 * OAuth metadata" for 2 minutes, for every principal of the instance, whenever discovery ends in
 * discovery.ts `noOAuthMetadata()`. But discovery.ts `getMetadata` treats ANY answer other than
 * 200 (a 503, a 429 of a rate limit, a 500) and any failed fetch (a reset, its own 10 s
 * deadline) as "no document here": one transient failure of an OAuth server's protected resource
 * metadata ends in the same `noOAuthMetadata()` and is remembered. For the next 2 minutes every
 * principal calling that server gets the upstream's plain 401 (`upstream_unauthorized`) and no
 * sign-in link, although the server is healthy again (and nothing is even asked of it).
 * A principal can cause the blip for everyone: its own calls through the proxy (the one egress
 * address) can run the server's per-address rate limit out, then a 429 on the metadata is
 * remembered for all.
 * Real parts: two node:http servers on loopback (an authorization server with RFC 8414 metadata
 * and registration, an MCP server answering 401 with its RFC 9728 metadata URL) and the proxy.
 */
describe('review8 creds 1: a transient failure of the resource metadata', () => {
  /** An OAuth MCP server whose resource metadata answers 503 while `metadataDown` is true. */
  async function oauthServer(issuer: string) {
    const state = { metadataDown: false, metadataGets: 0 };
    let origin = '';
    origin = await listen((request, response) => {
      request.resume();
      if (request.method === 'GET' && request.url?.startsWith('/.well-known/oauth-protected-resource')) {
        state.metadataGets++;
        if (state.metadataDown) return json(response, 503, { error: 'temporarily_unavailable' });
        return json(response, 200, { resource: `${origin}/mcp`, authorization_servers: [issuer] });
      }
      if (request.url === '/mcp') {
        response.writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
        });
        return response.end('{"error":"unauthorized"}');
      }
      json(response, 404, { error: 'not_found' });
    });
    return { url: `${origin}/mcp`, state };
  }

  it('is not remembered as "no OAuth": the next call, the server healthy again, offers the sign-in', async () => {
    const server = await oauthServer(await authorizationServer());
    const port = await freePort();
    const proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
    });
    cleanup.push(() => proxy.close());
    const call = (id: number) =>
      postProxy(proxy, { mcp_server_url: server.url, jsonrpc: '2.0', id, method: 'tools/list' });

    // One blip: the resource metadata answers 503 to the first discovery.
    server.state.metadataDown = true;
    const during = await call(1);
    // The server's 401 names its metadata, a plain sign of OAuth: the blip is the sign-in
    // failing, to retry (not the upstream's own refusal, which would say "check mcp_token").
    assert.equal(during.status, 502, JSON.stringify(during.body));
    assert.equal(during.body?.error?.data?.code, 'upstream_auth_failed', JSON.stringify(during.body));
    assert.equal(during.body?.error?.data?.reason, 'metadata_unavailable', JSON.stringify(during.body));
    server.state.metadataDown = false;
    const gets = server.state.metadataGets;

    // The server is healthy again: a principal (here the same one; any other alike) calls.
    const after = await call(2);
    assert.equal(
      after.body?.error?.data?.code,
      'upstream_auth_required',
      `one 503 of the metadata made the proxy forget the server uses OAuth: ${JSON.stringify(after.body)}` +
        ` (metadata GETs after the blip: ${server.state.metadataGets - gets})`,
    );
  });

  it("a bare 401 whose metadata URLs answer 503 stays the upstream's own refusal, not remembered", async () => {
    // An API-key server (no OAuth named in its 401) behind a gateway answering 503 elsewhere.
    const state = { wellKnownGets: 0 };
    const origin = await listen((request, response) => {
      request.resume();
      if (request.url?.startsWith('/.well-known/')) {
        state.wellKnownGets++;
        return json(response, 503, { error: 'unavailable' });
      }
      response.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      response.end('{"error":"missing api key"}');
    });
    const port = await freePort();
    const proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
    });
    cleanup.push(() => proxy.close());
    const call = (id: number) =>
      postProxy(proxy, { mcp_server_url: `${origin}/mcp`, jsonrpc: '2.0', id, method: 'tools/list' });
    const first = await call(1);
    assert.equal(first.status, 401, JSON.stringify(first.body));
    assert.equal(first.body?.error?.data?.code, 'upstream_unauthorized', JSON.stringify(first.body));
    const gets = state.wellKnownGets;
    assert.ok(gets > 0, 'the first call ran discovery');
    const second = await call(2);
    assert.equal(second.body?.error?.data?.code, 'upstream_unauthorized', JSON.stringify(second.body));
    // Nothing was concluded from the 503s: the next call asks again (once they answer 404 it stops).
    assert.equal(state.wellKnownGets - gets, gets, 'the 503s were remembered as "no OAuth"');
  });
});

/**
 * Review 8 (creds) finding 4: one principal makes the proxy remember "no OAuth" for a server
 * another principal needs. credentials/remembered-discovery.ts keys its memory by the server
 * URL's origin and path only, and broker.ts `#begin` consults it before it looks at the 401's
 * challenge. The MCP authorization spec lets a server publish its protected resource metadata
 * only where its 401 challenge says (`resource_metadata`, RFC 9728 §5.1), not at a well-known
 * URL. A caller that reaches the same origin and path in a way the server answers with a bare
 * 401 (here another transport, `transport: 'sse'`, whose GET the server's challenge middleware
 * does not cover) runs discovery without that URL: nothing found, "no OAuth" remembered for 2
 * minutes for the whole instance. Every other principal's call, whose 401 names
 * `resource_metadata` plainly, then gets the upstream's own 401 and no sign-in. One request
 * every 2 minutes keeps the server "without OAuth" for everybody.
 * Real parts: a node:http authorization server and MCP server on loopback, the proxy.
 */
describe("review8 creds 4: one principal's discovery decides 'no OAuth' for all", () => {
  const ALICE = 'alice-review8-creds-4-0123456789ab';
  const BOB = 'bob-review8-creds-4-0123456789abcd';

  /**
   * An OAuth MCP server whose resource metadata lives only where its POST 401 says (no well-known
   * URL); a GET of its endpoint gets a bare 401.
   */
  async function oauthServer(issuer: string): Promise<string> {
    let origin = '';
    origin = await listen((request, response) => {
      request.resume();
      if (request.method === 'GET' && request.url === '/oauth/resource-metadata') {
        return json(response, 200, { resource: `${origin}/mcp`, authorization_servers: [issuer] });
      }
      if (request.url === '/mcp' && request.method === 'POST') {
        response.writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': `Bearer resource_metadata="${origin}/oauth/resource-metadata"`,
        });
        return response.end('{"error":"unauthorized"}');
      }
      if (request.url === '/mcp') {
        response.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
        return response.end('{"error":"unauthorized"}');
      }
      json(response, 404, { error: 'not_found' });
    });
    return `${origin}/mcp`;
  }

  async function setup() {
    const serverUrl = await oauthServer(await authorizationServer());
    const port = await freePort();
    const proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: `${ALICE},${BOB}`,
    });
    cleanup.push(() => proxy.close());
    let id = 1;
    const call = (token: string, extra: Record<string, string> = {}) =>
      postProxy(
        { url: proxy.url, token },
        { mcp_server_url: serverUrl, ...extra, jsonrpc: '2.0', id: id++, method: 'tools/list' },
      );
    return { call };
  }

  it("(control) alice's call to the server is offered a sign-in", async () => {
    const { call } = await setup();
    const reply = await call(ALICE);
    assert.equal(reply.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(reply.body));
  });

  it("bob's bare 401 (another transport to the same URL) does not take alice's sign-in away", async () => {
    const { call } = await setup();
    const bobs = await call(BOB, { transport: 'sse' });
    assert.equal(bobs.status, 401, JSON.stringify(bobs.body));
    // Alice's call gets the server's 401 with its resource_metadata, a plain sign of OAuth.
    const reply = await call(ALICE);
    assert.equal(
      reply.body?.error?.data?.code,
      'upstream_auth_required',
      `alice is refused the sign-in because of bob's call: ${JSON.stringify(reply.body)}`,
    );
  });
});
