/**
 * Issue #14.8: with redirects enabled, a hop to another origin (scheme, host or port differ) goes
 * without the caller's credentials and session; a same-origin 307/308 keeps them; a redirect that
 * would turn a POST into a bodiless GET (301/302/303) is refused. Two loopback ports are two
 * origins; every server records what reached it.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { createEgressGuard } from '../src/egress/guard.ts';
import { UpstreamHttp } from '../src/upstream/http.ts';
import { policy, refusalOf } from './fixtures/egress-support.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Recorder {
  readonly origin: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

type Route = (path: string) => { status: number; location?: string } | undefined;

/** A loopback server that records every request; `route` may answer a path with a redirect. */
async function recorder(route: Route = () => undefined): Promise<Recorder> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const path = req.url ?? '';
      seen.push({ method: req.method ?? '', path, headers: req.headers, body });
      const redirect = route(path);
      if (redirect) {
        res.writeHead(redirect.status, redirect.location ? { location: redirect.location } : {});
        res.end();
        return;
      }
      const id = body ? (JSON.parse(body) as { id?: unknown }).id : null;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { tools: [] } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const CALLER_HEADERS = {
  'content-type': 'application/json',
  authorization: 'Bearer caller-mcp-token',
  cookie: 'sid=caller',
  'mcp-session-id': 'upstream-session-1',
  'mcp-protocol-version': '2025-06-18',
};
const BODY = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' });

describe('credentials on redirects', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close();
  });

  async function setup(route: (other: Recorder) => Route) {
    const other = await recorder();
    const first = await recorder(route(other));
    const guard = createEgressGuard(policy({ allowPrivateNetworks: true, followRedirects: 3 }));
    const http = new UpstreamHttp(guard, { timeoutMs: 5_000, responseLimitBytes: 1 << 20 });
    cleanup.push(other.close, first.close, () => guard.close());
    return { first, other, http };
  }

  it('drops Authorization, Cookie and Mcp-Session-Id on a 307 to another port', async () => {
    const { first, other, http } = await setup(
      (o) => (path) => (path === '/mcp' ? { status: 307, location: `${o.origin}/mcp` } : undefined),
    );
    const response = await http.send(new URL(`${first.origin}/mcp`), {
      method: 'POST',
      headers: CALLER_HEADERS,
      body: BODY,
    });
    assert.equal(response.status, 200);
    await http.readText(response);
    assert.equal(first.seen[0]?.headers.authorization, 'Bearer caller-mcp-token');
    const hop = other.seen[0];
    assert.ok(hop, 'the second origin was reached');
    assert.equal(hop.method, 'POST');
    assert.equal(hop.body, BODY);
    assert.equal(hop.headers.authorization, undefined);
    assert.equal(hop.headers.cookie, undefined);
    assert.equal(hop.headers['mcp-session-id'], undefined);
    assert.equal(hop.headers['mcp-protocol-version'], '2025-06-18');
  });

  it('drops them for good: a later hop back to the first origin stays without them', async () => {
    const { first, http } = await setup(() => (path) => {
      if (path === '/mcp') return { status: 308, location: `http://localhost:${portOf(first)}/back` };
      if (path === '/back') return { status: 307, location: `${first.origin}/final` };
      return undefined;
    });
    // 127.0.0.1 → localhost (the same server under another origin) → 127.0.0.1 again.
    const response = await http.send(new URL(`${first.origin}/mcp`), {
      method: 'POST',
      headers: CALLER_HEADERS,
      body: BODY,
    });
    await http.readText(response);
    assert.deepEqual(
      first.seen.map((s) => [s.path, s.headers.host, s.headers.authorization, s.headers['mcp-session-id']]),
      [
        ['/mcp', `127.0.0.1:${portOf(first)}`, 'Bearer caller-mcp-token', 'upstream-session-1'],
        ['/back', `localhost:${portOf(first)}`, undefined, undefined],
        ['/final', `127.0.0.1:${portOf(first)}`, undefined, undefined],
      ],
    );
  });

  for (const status of [307, 308]) {
    it(`keeps them on a same-origin ${status}, with the method and body`, async () => {
      const { first, http } = await setup(
        () => (path) => (path === '/old' ? { status, location: '/new' } : undefined),
      );
      const response = await http.send(new URL(`${first.origin}/old`), {
        method: 'POST',
        headers: CALLER_HEADERS,
        body: BODY,
      });
      await http.readText(response);
      const hop = first.seen[1];
      assert.equal(hop?.path, '/new');
      assert.equal(hop.method, 'POST');
      assert.equal(hop.body, BODY);
      assert.equal(hop.headers.authorization, 'Bearer caller-mcp-token');
      assert.equal(hop.headers['mcp-session-id'], 'upstream-session-1');
    });
  }

  for (const status of [301, 302, 303]) {
    it(`refuses a ${status} after a POST, naming it, without contacting the target`, async () => {
      const { first, other, http } = await setup((o) => () => ({ status, location: `${o.origin}/mcp` }));
      const sent = http.send(new URL(`${first.origin}/mcp`), {
        method: 'POST',
        headers: CALLER_HEADERS,
        body: BODY,
      });
      await assert.rejects(sent, new RegExp(`answered ${status} to a POST`));
      assert.equal(await refusalOf(sent), 'redirect_refused');
      assert.equal(other.seen.length, 0);
    });
  }

  it('follows a 303 after a GET (an SSE stream) as a GET, across origins without credentials', async () => {
    const { first, other, http } = await setup((o) => () => ({ status: 303, location: `${o.origin}/sse` }));
    const response = await http.send(new URL(`${first.origin}/sse`), {
      method: 'GET',
      headers: { accept: 'text/event-stream', authorization: 'Bearer caller-mcp-token' },
    });
    await http.readText(response);
    assert.equal(other.seen[0]?.method, 'GET');
    assert.equal(other.seen[0]?.headers.authorization, undefined);
  });
});

function portOf(server: Recorder): string {
  return new URL(server.origin).port;
}

describe('credentials on redirects through POST /proxy', () => {
  it('the caller’s mcp_token does not reach the other origin', async () => {
    const other = await recorder();
    const first = await recorder(() => ({ status: 307, location: `${other.origin}/mcp` }));
    const proxy = await startProxy({ EGRESS_FOLLOW_REDIRECTS: '2' });
    try {
      const reply = await postProxy(proxy, {
        mcp_server_url: `${first.origin}/mcp`,
        transport: 'streamable-http',
        mcp_token: 'caller-mcp-token',
        mcp_protocol_version: '2025-06-18',
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/list',
      });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.deepEqual(reply.body.result, { tools: [] });
      assert.equal(first.seen[0]?.headers.authorization, 'Bearer caller-mcp-token');
      assert.equal(other.seen.length, 1);
      assert.equal(other.seen[0]?.headers.authorization, undefined);
      assert.ok(!proxy.logs.some((line) => line.includes('caller-mcp-token')));
    } finally {
      await proxy.close();
      await first.close();
      await other.close();
    }
  });
});

describe('redirect Locations through POST /proxy (review F3, F4)', () => {
  const cases: readonly (readonly [name: string, location: (port: string) => string, reason: string])[] = [
    ['a scheme-relative hex IPv4 spelling', (port) => `//0x7f.0.0.1:${port}/mcp`, 'host_forbidden'],
    ['a scheme-relative decimal IPv4 spelling', (port) => `//2130706433:${port}/mcp`, 'host_forbidden'],
    ['a ws: URL', (port) => `ws://127.0.0.1:${port}/mcp`, 'redirect_refused'],
  ];
  for (const [name, location, reason] of cases) {
    it(`refuses ${name} (${reason}) without contacting it`, async () => {
      const other = await recorder();
      const first = await recorder(() => ({ status: 307, location: location(portOf(other)) }));
      const proxy = await startProxy({ EGRESS_FOLLOW_REDIRECTS: '2' });
      try {
        const reply = await postProxy(proxy, {
          mcp_server_url: `${first.origin}/mcp`,
          transport: 'streamable-http',
          mcp_protocol_version: '2025-06-18',
          jsonrpc: '2.0',
          id: 3,
          method: 'tools/list',
        });
        assert.equal(reply.status, 403, JSON.stringify(reply.body));
        assert.equal(reply.body.error.data.code, 'target_forbidden');
        assert.equal(reply.body.error.data.reason, reason);
        assert.equal(first.seen.length, 1);
        assert.equal(other.seen.length, 0);
      } finally {
        await proxy.close();
        await first.close();
        await other.close();
      }
    });
  }
});
