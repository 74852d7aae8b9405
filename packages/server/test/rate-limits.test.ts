import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { startMisbehaving } from './fixtures/misbehaving-upstream.ts';
import { eventually } from './helpers/eventually.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ECHO = (origin: string) => ({
  mcp_server_url: `${origin}/echo-auth`,
  jsonrpc: '2.0',
  id: 1,
  method: 'ping',
});

describe('rate limits (in memory)', () => {
  it('locks out an address after repeated auth failures, even for a valid token, with Retry-After', async () => {
    const upstream = await startMisbehaving();
    const proxy = await startProxy({ RATE_LIMIT_AUTH_FAILURES_PER_IP: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    try {
      for (let i = 0; i < 3; i++) {
        const wrong = await postProxy(
          { url: proxy.url, token: `wrong-token-${i}-aaaaaaaaaa` },
          ECHO(upstream.origin),
        );
        assert.equal(wrong.status, 401);
      }
      const locked = await postProxy(proxy, ECHO(upstream.origin));
      assert.equal(locked.status, 429);
      assert.equal(locked.body.error.data.code, 'rate_limited');
      assert.equal(locked.body.error.data.limit, 'authFailuresPerIp');
      const retryAfter = Number(locked.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      assert.equal(upstream.hits.get('/echo-auth'), undefined, 'nothing was forwarded');
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });

  it('closes the connection after every refusal of a credential or a count (issue 17 review)', async () => {
    const proxy = await startProxy({
      RATE_LIMIT_AUTH_FAILURES_PER_IP: '2',
      RATE_LIMIT_PER_TOKEN: '1',
      RATE_LIMIT_WINDOW_MS: '60000',
    });
    // The `Connection` header a refusal went out with (fetch hides it).
    const connectionOf = (token: string) =>
      new Promise<string>((resolve, reject) => {
        const req = httpRequest(
          `${proxy.url}/proxy`,
          { method: 'POST', headers: { 'content-type': 'application/json', 'x-proxy-token': token } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(`${res.statusCode} ${res.headers.connection}`));
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    try {
      assert.equal(await connectionOf(proxy.token), '400 keep-alive', 'admitted (counted once)');
      assert.equal(await connectionOf(proxy.token), '429 close', 'a count refused');
      // Two failures counted, the third is refused by the count itself, then by the gate.
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) codes.push(await connectionOf(`wrong-token-${i}-aaaaaaaaaa`));
      assert.deepEqual(codes, ['401 close', '401 close', '429 close', '429 close']);
    } finally {
      await proxy.close();
    }
  });

  it('limits requests per proxy token, and the window reopens', async () => {
    const upstream = await startMisbehaving();
    const clock = new ManualClock();
    const proxy = await startProxy({ RATE_LIMIT_PER_TOKEN: '2', RATE_LIMIT_WINDOW_MS: '1000' }, { clock });
    try {
      assert.equal((await postProxy(proxy, ECHO(upstream.origin))).status, 200);
      assert.equal((await postProxy(proxy, ECHO(upstream.origin))).status, 200);
      const third = await postProxy(proxy, ECHO(upstream.origin));
      assert.equal(third.status, 429);
      assert.equal(third.body.error.data.limit, 'requestsPerToken');
      assert.ok(Number(third.headers.get('retry-after')) >= 1);
      clock.advance(999);
      assert.equal((await postProxy(proxy, ECHO(upstream.origin))).status, 429, 'the window is still closed');
      clock.advance(1);
      assert.equal((await postProxy(proxy, ECHO(upstream.origin))).status, 200);
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });

  it('believes X-Forwarded-For only from configured proxies', async () => {
    const upstream = await startMisbehaving();
    const untrusting = await startProxy({ RATE_LIMIT_PER_IP: '2' });
    const trusting = await startProxy({ RATE_LIMIT_PER_IP: '2', TRUSTED_PROXIES: '127.0.0.1' });
    try {
      // Without trust, spoofed addresses all count against the real peer (127.0.0.1).
      const statuses = [];
      for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
        statuses.push((await postProxy(untrusting, ECHO(upstream.origin), { 'x-forwarded-for': ip })).status);
      }
      assert.deepEqual(statuses, [200, 200, 429]);
      // Behind a trusted proxy, each forwarded client has its own budget.
      for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
        assert.equal(
          (await postProxy(trusting, ECHO(upstream.origin), { 'x-forwarded-for': ip })).status,
          200,
        );
      }
    } finally {
      await untrusting.close();
      await trusting.close();
      await upstream.stop();
    }
  });

  it('limits WebSocket messages per token with JSON-RPC error frames', async () => {
    const upstream = await startMisbehaving();
    const proxy = await startProxy({
      HOST: '127.0.0.1',
      WS_ALLOW_MISSING_ORIGIN: 'true',
      RATE_LIMIT_WS_MESSAGES_PER_TOKEN: '2',
    });
    try {
      const ws = new WebSocket(
        `${proxy.url.replace('http', 'ws')}/ws?mcp_server_url=${encodeURIComponent(`${upstream.origin}/echo-auth`)}&transport=streamable-http`,
        ['mcp', `proxy-token.${proxy.token}`],
      );
      const frames: Array<{ id: number; result?: unknown; error?: { data: { code: string } } }> = [];
      ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
      await new Promise((resolve) => ws.once('open', resolve));
      for (const id of [1, 2, 3]) ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }));
      await eventually(() => frames.length >= 3, { what: 'three answers' }).catch(() => {});
      const third = frames.find((f) => f.id === 3);
      assert.equal(third?.error?.data.code, 'rate_limited');
      assert.ok(frames.find((f) => f.id === 1)?.result);
      ws.close();
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });

  it('limits new sessions per token', async () => {
    const proxy = await startProxy({ RATE_LIMIT_SESSIONS_PER_TOKEN: '1', WS_ALLOW_MISSING_ORIGIN: 'true' });
    const upstream = await startMisbehaving();
    try {
      const open = () =>
        new Promise<{ code: number; reason: string }>((resolve) => {
          const ws = new WebSocket(
            `${proxy.url.replace('http', 'ws')}/ws?mcp_server_url=${encodeURIComponent(`${upstream.origin}/echo-auth`)}`,
            ['mcp', `proxy-token.${proxy.token}`],
          );
          // Counted from the opening handshake: a fixed time from the call ended a session the
          // loaded machine had not opened yet ("closed before the connection was established").
          let ending: NodeJS.Timeout | undefined;
          ws.once('open', () => {
            ending = setTimeout(() => ws.close(1000), 300);
          });
          ws.once('close', (code, reason) => {
            clearTimeout(ending);
            resolve({ code, reason: reason.toString() });
          });
        });
      assert.equal((await open()).code, 1000);
      const second = await open();
      assert.equal(second.code, 4429);
      assert.match(second.reason, /^rate_limited:/);
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  });
});
