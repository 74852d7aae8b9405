/**
 * @module bench/scenarios/paths
 * What a tools/call looks like on each path to the same upstream: straight to it, through
 * nginx, through the proxy's `POST /proxy` envelope, and through its `/mcp` pass-through.
 */
import { ECHO_CALL, PROXY_TOKEN } from '../lib/env.ts';
import { expectAnswer, post } from '../lib/mcp-http.ts';
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
