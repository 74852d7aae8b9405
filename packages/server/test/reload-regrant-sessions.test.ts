/**
 * A reload that changes a URL grant (review 15 URLPATTERN-3): a held session to a raw URL serves only
 * callers with the URL grant it was opened under (dispatch/held-sessions.ts `servesCaller`). A
 * reload that changes a config token's `urls` without taking anything away (it widens them) makes
 * every held session of that token unusable for it (documented), but the reload does not end
 * them (identity/reload-reach.ts: they still reach all they reached), so they keep counting
 * against the token's session cap (`MAX_SESSIONS_PER_TOKEN`) until they idle out: the token
 * cannot open the session it is told to open instead (404 session_not_found says "initialize
 * again"), up to the idle timeout, and for as long as the old session's GET stream keeps it alive.
 *
 * A real loopback HTTP+SSE server; `MAX_SESSIONS_PER_TOKEN=1`; the token's grant widens from
 * `/public/**` to `/public/**` and `/docs/**`. After the reload the old session answers
 * session_not_found (as designed); a new initialize must then open a session.
 *
 * Fixed: the reload ends a raw URL session whose grant digest is not its config token's now
 * (identity/reload-reach.ts `regranted`); its owner may also DELETE it (session-url-grant.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  grantConfig,
  type LoopbackUpstream,
  postSse,
  reloadGrant,
  startSseUpstream,
} from './helpers/grant-upstreams.ts';
import { type RunningProxy, startProxy } from './helpers/proxy.ts';

const CALLER = 'review15-urlpattern-3-caller-0123456789';

describe('a reload that changes a URL grant does not leave the token locked out of sessions (review15 URLPATTERN-3)', () => {
  let upstream: LoopbackUpstream;
  let port: number;
  let proxy: RunningProxy;
  const config = grantConfig('review15-urlpattern-3', CALLER);
  const env = { EGRESS_FOLLOW_REDIRECTS: '0', MAX_SESSIONS_PER_TOKEN: '1' };

  before(async () => {
    // Each stream is one session; messages are answered on all (the test holds one at a time but two at the end).
    upstream = await startSseUpstream({
      endpoint: (url) => (url === '/public/sse' ? '/public/messages' : undefined),
      isMessage: (url) => url === '/public/messages',
    });
    port = upstream.port;
    config.configure([`http://127.0.0.1:${port}/public/**`]);
    proxy = await startProxy({ MCP_PROXY_CONFIG: config.path, ...env });
  });

  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  const send = (method: string, id: number, headers: Record<string, string> = {}) =>
    postSse({ url: proxy.url, token: CALLER }, `http://127.0.0.1:${port}/public/sse`, method, id, headers);

  it('after the reload the old session is not the token’s, and a new one opens', async () => {
    const init = await send('initialize', 1);
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(sessionId, 'a held session was opened');
    // The cap holds (the setup works): a second session is refused while the first is open.
    const second = await send('initialize', 2);
    assert.equal(second.body?.error?.data?.code, 'session_limit', JSON.stringify(second.body));

    // The operator widens the grant: nothing the session reached is taken away.
    config.configure([`http://127.0.0.1:${port}/public/**`, `http://127.0.0.1:${port}/docs/**`]);
    reloadGrant(proxy, config, env);
    const old = await send('ping', 3, { 'mcp-session-id': sessionId });
    assert.equal(old.body?.error?.data?.code, 'session_not_found', JSON.stringify(old.body));
    // Told its session is gone, the client initializes again: it must get a session.
    const again = await send('initialize', 4);
    assert.equal(again.status, 200, `the token is locked out of sessions: ${JSON.stringify(again.body)}`);
  });
});
