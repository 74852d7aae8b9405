/**
 * A held session to a raw URL remembers every URL its upstream sent it on to beyond its stream's
 * (sessions/session-reach.ts), so that a reload can judge them (reload-session-reach.test.ts).
 * The list is bounded: an upstream that redirects each message to a URL of its own cannot grow it
 * without end. Past {@link MAX_REACHED_URLS} a new one is refused as outside the grant; a caller
 * no URL grant limits follows it unrecorded (review 15 design note).
 *
 * A real loopback HTTP+SSE server names `/public/messages` as its endpoint and answers each POST
 * there with a 307 to a new `/public/messages/<n>`: the session's endpoint and the hops followed
 * number 8 at most; the next message's hop is refused (`redirect_refused`) and nothing is posted
 * there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_REACHED_URLS } from '../src/sessions/session-reach.ts';
import { grantConfig, type LoopbackUpstream, postSse, startSseUpstream } from './helpers/grant-upstreams.ts';
import { type RunningProxy, startProxy, TEST_TOKEN } from './helpers/proxy.ts';

const CALLER = 'session-reach-cap-caller-0123456789';

describe('a held session remembers a bounded number of URLs it was sent on to', () => {
  let upstream: LoopbackUpstream;
  let port: number;
  let proxy: RunningProxy;
  /** Paths each POST was answered at (not redirected from). */
  const answeredAt: string[] = [];
  let hops = 0;

  before(async () => {
    upstream = await startSseUpstream({
      endpoint: (url) => (url === '/public/sse' ? '/public/messages' : undefined),
      // The endpoint redirects every POST to a new hop under it.
      first: (req, res) => {
        if (req.method !== 'POST' || req.url !== '/public/messages') return false;
        req.resume();
        res.writeHead(307, { location: `/public/messages/${++hops}` }).end();
        return true;
      },
      isMessage: (url) => url.startsWith('/public/messages'),
      onMessage: (url) => answeredAt.push(url),
    });
    port = upstream.port;
    const config = grantConfig('session-reach-cap', CALLER);
    config.configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path, EGRESS_FOLLOW_REDIRECTS: '2' });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  const send = (id: number, method: string, headers: Record<string, string> = {}, token = CALLER) =>
    postSse({ url: proxy.url, token }, `http://127.0.0.1:${port}/public/sse`, method, id, headers);

  it(`follows hops until ${MAX_REACHED_URLS} URLs are remembered, then refuses the next`, async () => {
    const init = await send(1, 'initialize');
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, 'a held session was opened');
    // The endpoint is one remembered URL; every hop followed is another.
    let id = 2;
    let refused:
      | { status: number; body: { error?: { data?: { code?: string; reason?: string } } } }
      | undefined;
    while (refused === undefined && id < 2 + 2 * MAX_REACHED_URLS) {
      const reply = await send(id++, 'ping', { 'mcp-session-id': sessionId });
      if (reply.body?.error !== undefined) refused = reply;
      else assert.equal(reply.status, 200, JSON.stringify(reply.body));
    }
    assert.ok(refused, `no hop was refused after ${id - 2} pings: ${JSON.stringify(answeredAt)}`);
    assert.equal(refused.body.error?.data?.code, 'target_forbidden', JSON.stringify(refused.body));
    assert.equal(refused.body.error?.data?.reason, 'redirect_refused', JSON.stringify(refused.body));
    assert.equal(
      new Set(answeredAt).size,
      MAX_REACHED_URLS - 1,
      `hops followed besides the endpoint: ${JSON.stringify(answeredAt)}`,
    );
    assert.ok(!answeredAt.includes(`/public/messages/${hops}`), 'the refused hop was not posted to');
  });

  it(`without a URL grant, follows hops past ${MAX_REACHED_URLS} (unrecorded) rather than refuse them`, async () => {
    const init = await send(1, 'initialize', {}, TEST_TOKEN);
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, `a held session was opened: ${JSON.stringify(init.body)}`);
    const before = answeredAt.length;
    for (let id = 2; id < 2 + 2 * MAX_REACHED_URLS; id++) {
      const reply = await send(id, 'ping', { 'mcp-session-id': sessionId }, TEST_TOKEN);
      assert.equal(reply.status, 200, `ping ${id}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body?.error, undefined, `ping ${id}: ${JSON.stringify(reply.body)}`);
    }
    assert.equal(answeredAt.length - before, 2 * MAX_REACHED_URLS, JSON.stringify(answeredAt.slice(before)));
  });
});
