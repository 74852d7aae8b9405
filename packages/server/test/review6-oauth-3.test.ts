/**
 * Review 6 (OAuth broker), finding OAUTH-3: a refresh that was already in flight when the user
 * completed a new sign-in for the same server overwrites the new sign-in's tokens. The refresh
 * ends with an unconditional `vault.put` (credentials/token-refresh.ts:310) and the callback
 * stores without the slot's lock (credentials/broker.ts:442), so the older grant's refreshed
 * token wins: the step-up scopes (or the other upstream account) the user just granted are lost,
 * and the proxy goes on calling the server as the old grant.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { eventually } from './helpers/eventually.ts';
import { json, serveHostile } from './helpers/hostile-server.ts';
import { ManualClock } from './helpers/manual-clock.ts';
import { freePort } from './helpers/net.ts';
import { postProxy, startProxy } from './helpers/proxy.ts';

const ALICE = 'alice-proxy-token-0123456789abcdef';
const APP = 'http://app.example';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('OAUTH-3: a refresh in flight never replaces a newer sign-in', () => {
  it('the step-up sign-in completed during a refresh keeps its token', async () => {
    const seen: string[] = [];
    const grants: string[] = [];
    let releaseRefresh: (() => void) | undefined;
    const refreshHeld = new Promise<void>((resolve) => {
      releaseRefresh = resolve;
    });
    cleanup.push(() => releaseRefresh?.());
    let codeExchanges = 0;
    let base = '';
    base = await serveHostile(cleanup, async (req, res, url, body) => {
      if (url.pathname === '/prm/mcp')
        return json(res, 200, { resource: `${base}/mcp`, authorization_servers: [`${base}/as`] });
      if (url.pathname === '/.well-known/oauth-authorization-server/as')
        return json(res, 200, {
          issuer: `${base}/as`,
          authorization_endpoint: `${base}/authorize`,
          token_endpoint: `${base}/token`,
          registration_endpoint: `${base}/register`,
          response_types_supported: ['code'],
          code_challenge_methods_supported: ['S256'],
        });
      if (url.pathname === '/register') return json(res, 201, { client_id: 'c1' });
      if (url.pathname === '/token') {
        const grant = new URLSearchParams(body).get('grant_type') ?? '';
        grants.push(grant);
        if (grant === 'refresh_token') {
          await refreshHeld;
          return json(res, 200, {
            access_token: 'at-old-refreshed',
            token_type: 'bearer',
            expires_in: 60,
            scope: 'read',
          });
        }
        codeExchanges++;
        // The first sign-in: read only; the second (step-up): read and admin.
        return codeExchanges === 1
          ? json(res, 200, {
              access_token: 'at-old',
              refresh_token: 'rt-old',
              token_type: 'bearer',
              expires_in: 60,
              scope: 'read',
            })
          : json(res, 200, {
              access_token: 'at-new',
              refresh_token: 'rt-new',
              token_type: 'bearer',
              expires_in: 3600,
              scope: 'read admin',
            });
      }
      if (url.pathname === '/mcp') {
        const auth = req.headers.authorization ?? '';
        const message = body === '' ? {} : JSON.parse(body);
        seen.push(`${auth} ${message.method}`);
        const challenge = `Bearer resource_metadata="${base}/prm/mcp"`;
        if (!['Bearer at-old', 'Bearer at-old-refreshed', 'Bearer at-new'].includes(auth))
          return json(res, 401, {}, { 'www-authenticate': challenge });
        if (message.method === 'tools/call' && auth !== 'Bearer at-new')
          return json(
            res,
            403,
            {},
            {
              'www-authenticate': `Bearer error="insufficient_scope", scope="read admin", resource_metadata="${base}/prm/mcp"`,
            },
          );
        return json(res, 200, {
          jsonrpc: '2.0',
          id: message.id,
          result: { content: [{ type: 'text', text: auth }] },
        });
      }
      res.writeHead(404).end();
    });

    const clock = new ManualClock();
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const proxy = await startProxy(
      {
        PORT: String(port),
        PUBLIC_URL: publicUrl,
        OAUTH_BROKER: 'true',
        PROXY_TOKENS: ALICE,
        CORS_ORIGINS: APP,
        LOG_LEVEL: 'warn',
      },
      { clock },
    );
    cleanup.push(() => proxy.close());
    let id = 1;
    const call = (method: string) =>
      postProxy(
        { url: proxy.url, token: ALICE },
        {
          mcp_server_url: `${base}/mcp`,
          jsonrpc: '2.0',
          id: id++,
          method,
          params: { name: 'admin', arguments: {} },
        },
        { origin: APP },
      );
    const same = { 'content-type': 'application/json', origin: publicUrl, 'sec-fetch-site': 'same-origin' };
    const bind = async (link: string) => {
      const r = await fetch(link, {
        method: 'POST',
        headers: same,
        body: JSON.stringify({ credential: ALICE, origin: APP }),
      });
      const b = (await r.json()) as { authorizeUrl: string; state: string; nonce: string };
      assert.equal(r.status, 200, JSON.stringify(b));
      return b;
    };
    const complete = async (b: { authorizeUrl: string; state: string; nonce: string }) => {
      const callback = new URL(b.authorizeUrl).searchParams.get('redirect_uri') as string;
      const done = await fetch(callback, {
        method: 'POST',
        headers: same,
        body: JSON.stringify({ query: `?code=c&state=${b.state}`, nonce: b.nonce }),
      });
      assert.equal(done.status, 200, await done.text());
    };

    // Signed in with `read`; the admin tool asks for a step-up: the user starts it.
    const first = await call('tools/list');
    assert.equal(first.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(first.body));
    await complete(await bind(first.body.error.data.authorizeUrl));
    const stepUp = await call('tools/call');
    assert.equal(stepUp.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(stepUp.body));
    const bound = await bind(stepUp.body.error.data.authorizeUrl);

    // The old token falls due: a call starts its refresh, which the authorization server holds.
    clock.advance(50_000);
    const waiting = call('tools/list');
    await eventually(() => (grants.includes('refresh_token') ? true : undefined), {
      what: 'the refresh started',
    });
    // Meanwhile the user finishes the step-up sign-in; then the old grant's refresh answers.
    await complete(bound);
    releaseRefresh?.();
    await waiting;

    const after = await call('tools/call');
    assert.equal(
      after.body?.result?.content?.[0]?.text,
      'Bearer at-new',
      `the step-up sign-in was overwritten: ${JSON.stringify(after.body)} (upstream saw ${seen.slice(-2).join(' | ')})`,
    );
  });
});
