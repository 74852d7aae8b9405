/**
 * A proxy with the upstream OAuth broker on, in front of the OAuth test world
 * (helpers/oauth-world.ts), for the broker's feature tests: `setupOAuth()` starts both (torn down
 * by the `cleanup` list the test passes), `whoami`/`callTool` call the world's upstream through
 * `POST /proxy`, `connect` signs a scripted user in from a first refused call.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ManualClock } from './manual-clock.ts';
import { freePort } from './net.ts';
import { type OAuthWorld, type OAuthWorldOptions, startOAuthWorld } from './oauth-world.ts';
import { postProxy, type Reply, type RunningProxy, startProxy } from './proxy.ts';

export const ALICE = 'alice-proxy-token-0123456789abcdef';
export const BOB = 'bob-proxy-token-0123456789abcdefgh';
/** The app's origin: listed in CORS_ORIGINS, it answers the start page's bind (docs/oauth.md). */
export const APP = 'http://app.example';

/** What the app answers the start page (the bind protocol): `token`'s credential. */
export function bindAs(token: string): { credential: string; origin: string } {
  return { credential: token, origin: APP };
}

/** What {@link setupOAuth} started. */
export interface OAuthSetup {
  readonly world: OAuthWorld;
  readonly proxy: RunningProxy;
  readonly clock: ManualClock;
  readonly publicUrl: string;
}

/** Starts the world (access tokens live 60 s on `clock`) and a proxy for alice and bob. */
export async function setupOAuth(
  cleanup: Array<() => Promise<void> | void>,
  env: Record<string, string> = {},
  world: OAuthWorldOptions = {},
): Promise<OAuthSetup> {
  const clock = new ManualClock();
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const started = await startOAuthWorld({ clock, accessTokenTtl: 60, ...world });
  cleanup.push(() => started.stop());
  const proxy = await startProxy(
    {
      PORT: String(port),
      PUBLIC_URL: publicUrl,
      OAUTH_BROKER: 'true',
      PROXY_TOKENS: `${ALICE},${BOB}`,
      CORS_ORIGINS: APP,
      ...env,
    },
    { clock },
  );
  cleanup.push(() => proxy.close());
  return { world: started, proxy, clock, publicUrl };
}

let nextId = 1;

/** Calls `tool` of the world's upstream through `POST /proxy` as `token`. */
export function callTool(
  s: Pick<OAuthSetup, 'proxy' | 'world'>,
  token: string,
  tool: string,
  upstreamUrl = s.world.upstream.url,
): Promise<Reply> {
  return postProxy(
    { url: s.proxy.url, token },
    {
      mcp_server_url: upstreamUrl,
      jsonrpc: '2.0',
      id: nextId++,
      method: 'tools/call',
      params: { name: tool, arguments: {} },
    },
    { origin: APP },
  );
}

/** The `sub` a successful `whoami` answer names. */
export function subjectOf(reply: Reply): string {
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return JSON.parse(reply.body.result.content[0].text).sub;
}

/** The `authorizeUrl` of an `upstream_auth_required` answer, checked. */
export function authorizeUrlOf(s: Pick<OAuthSetup, 'publicUrl'>, reply: Reply): string {
  assert.equal(reply.status, 401, JSON.stringify(reply.body));
  assert.equal(reply.body.error.data.code, 'upstream_auth_required');
  const url: string = reply.body.error.data.authorizeUrl;
  assert.ok(url.startsWith(`${s.publicUrl}/oauth/start/`), url);
  return url;
}

/** Signs `user` in for `token`'s principal: a refused call, then login and consent. */
export async function connect(
  s: OAuthSetup,
  token: string,
  user: string,
  upstreamUrl = s.world.upstream.url,
): Promise<void> {
  const url = authorizeUrlOf(s, await callTool(s, token, 'whoami', upstreamUrl));
  const done = await s.world.user(user).authorize(url, { follow: true, bind: bindAs(token) });
  assert.equal(done.callback?.status, 200, done.callback?.body);
}

/** The access tokens the world's upstream saw (without `Bearer `). */
export function upstreamTokens(s: Pick<OAuthSetup, 'world'>): string[] {
  return s.world.upstream
    .authorizations()
    .filter((h) => h.startsWith('Bearer '))
    .map((h) => h.slice('Bearer '.length));
}

/**
 * The scopes the authorization request behind a one-time start link asks for: binds the link as
 * the page would for `token` (which uses it up) and reads the authorization URL it answers.
 */
export async function scopesAsked(url: string, token: string): Promise<string[]> {
  const bound = await postStart(url, bindAs(token));
  assert.equal(bound.status, 200, JSON.stringify(bound.body));
  const authorize = new URL((bound.body as { authorizeUrl: string }).authorizeUrl);
  return (authorize.searchParams.get('scope') ?? '').split(' ').sort();
}

/** POSTs `body` to a start link as the start page's script does (same origin): a bind, or a typed code. */
// biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies.
export async function postStart(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: new URL(url).origin,
      'sec-fetch-site': 'same-origin',
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** An SDK v1 client connected through the proxy's `/mcp` to `upstreamUrl` as `token` (closed by `cleanup`). */
export async function connectMcp(
  s: Pick<OAuthSetup, 'proxy' | 'world'>,
  token: string,
  cleanup: Array<() => Promise<void> | void>,
  upstreamUrl = s.world.upstream.url,
): Promise<Client> {
  const client = new Client({ name: 'oauth-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${s.proxy.url}/mcp`), {
    requestInit: { headers: { 'x-proxy-token': token, 'x-mcp-server-url': upstreamUrl } },
  });
  await client.connect(transport);
  cleanup.push(() => client.close());
  return client;
}

/** The sign-in link a refused call (`upstream_auth_required`) offers. */
export function linkOf(reply: Reply): string {
  assert.equal(reply.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(reply.body));
  return reply.body.error.data.authorizeUrl;
}

/** The bind POST the start page makes (docs/oauth.md); answers the parsed JSON. */
export async function bind(
  link: string,
  credential: string,
): Promise<{ status: number; body: Record<string, string> }> {
  const response = await fetch(link, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: new URL(link).origin,
      'sec-fetch-site': 'same-origin',
    },
    body: JSON.stringify({ credential, origin: APP }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}
