/**
 * @module bench/scenarios/paths
 * What a tools/call looks like on each path to the same upstream: straight to it, through
 * nginx, through the proxy's `POST /proxy` envelope, and through its `/mcp` pass-through.
 */
import { ADMIN_TOKEN, ECHO_CALL, PROXY_TOKEN } from '../lib/env.ts';
import { expectAnswer, openSession, post } from '../lib/mcp-http.ts';
import type { RequestSpec } from '../lib/wrk.ts';

const ACCEPT = 'application/json, text/event-stream';

/** Straight to an MCP endpoint (the upstream, or nginx in front of it). */
export function directSpec(mcpUrl: string, sessionId?: string): RequestSpec {
  return {
    url: mcpUrl,
    headers: {
      'Content-Type': 'application/json',
      Accept: ACCEPT,
      ...(sessionId ? { 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-06-18' } : {}),
    },
    body: JSON.stringify(sessionId ? { ...ECHO_CALL, id: '__ID__' } : ECHO_CALL),
    uniqueIds: sessionId !== undefined,
  };
}

/** `POST /proxy` with the envelope naming the upstream. */
export function proxySpec(proxyBase: string, upstreamUrl: string, sessionId?: string): RequestSpec {
  const envelope = {
    mcp_server_url: upstreamUrl,
    ...(sessionId ? { mcp_session_id: sessionId, mcp_protocol_version: '2025-06-18' } : {}),
    ...ECHO_CALL,
    ...(sessionId ? { id: '__ID__' } : {}),
  };
  return {
    url: `${proxyBase}/proxy`,
    headers: { 'Content-Type': 'application/json', 'X-Proxy-Token': PROXY_TOKEN },
    body: JSON.stringify(envelope),
    uniqueIds: sessionId !== undefined,
  };
}

/** `/mcp` Streamable HTTP pass-through, upstream named in `X-MCP-Server-URL`. */
export function mcpSpec(proxyBase: string, upstreamUrl: string, sessionId?: string): RequestSpec {
  return {
    url: `${proxyBase}/mcp`,
    headers: {
      'Content-Type': 'application/json',
      Accept: ACCEPT,
      'X-Proxy-Token': PROXY_TOKEN,
      'X-MCP-Server-URL': upstreamUrl,
      ...(sessionId ? { 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': '2025-06-18' } : {}),
    },
    body: JSON.stringify(sessionId ? { ...ECHO_CALL, id: '__ID__' } : ECHO_CALL),
    uniqueIds: sessionId !== undefined,
  };
}

/**
 * `/mcp` in front of the fast upstream's WebSocket endpoint: a bridged (proxy-held) session, its
 * answers written by the proxy as an event stream (the client's Accept lists both). Opens the
 * session first; `mcpUrl` is the upstream's Streamable HTTP URL (`…/mcp`), its `/ws` is used.
 */
export async function bridgedSpec(proxyBase: string, mcpUrl: string): Promise<RequestSpec> {
  const wsUrl = mcpUrl.replace(/^http/, 'ws').replace(/\/mcp$/, '/ws');
  const sessionId = await openSession(`${proxyBase}/mcp`, {
    'x-proxy-token': PROXY_TOKEN,
    'x-mcp-server-url': wsUrl,
  });
  return mcpSpec(proxyBase, wsUrl, sessionId);
}

/**
 * `spec` with a minted token in place of the static one (issue 17): in `X-Proxy-Token`, or as
 * `Authorization: Bearer` (the way a browser app or an MCP client presents a user token).
 */
export function withToken(spec: RequestSpec, token: string, place: 'header' | 'bearer'): RequestSpec {
  const { 'X-Proxy-Token': _static, ...headers } = spec.headers;
  return {
    ...spec,
    headers:
      place === 'header'
        ? { ...headers, 'X-Proxy-Token': token }
        : { ...headers, Authorization: `Bearer ${token}` },
  };
}

/** Mints a user token on `proxyBase` with the bench's admin token, valid for the whole run. */
export async function mintToken(proxyBase: string): Promise<string> {
  const response = await fetch(`${proxyBase}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-proxy-token': ADMIN_TOKEN },
    body: JSON.stringify({ subject: 'bench-user', ttlSeconds: 86_400 }),
  });
  if (response.status !== 201) throw new Error(`minting a token answered ${response.status}`);
  return ((await response.json()) as { token: string }).token;
}

/**
 * Sends one request of `spec` and checks the echo comes back (a broken path must not be timed);
 * returns the answer's content type.
 */
export async function checkSpec(name: string, spec: RequestSpec): Promise<string> {
  const body = spec.uniqueIds ? spec.body.replace('"__ID__"', '"check-1"') : spec.body;
  const headers = Object.fromEntries(Object.entries(spec.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const answer = await post(spec.url, headers, body);
  expectAnswer(name, answer, 'Echo: bench');
  return answer.headers.get('content-type') ?? '';
}
