/**
 * @module credentials/traced-fetch
 * The OAuth flow's steps as client spans (issue 21): each call the broker makes (metadata
 * discovery, client registration, the token exchange and refresh, revocation) is a span named
 * for its step, under the request that caused it. Names and hosts only: never a URL's path or
 * query, a body, a code, a client secret or a token. Wrapped around the flow's fetch only while
 * tracing is on.
 */
import type { Tracing } from '../observability/tracing.ts';
import type { OAuthFetch, OAuthFetchInit } from './guarded-fetch.ts';

/** `fetch` with a client span per call. */
export function tracedFetch(fetch: OAuthFetch, tracing: Tracing): OAuthFetch {
  return async (url, init) => {
    const step = stepOf(url, init);
    const span = tracing.client(`oauth ${step}`, {
      'mcp_proxy.oauth.step': step,
      'http.request.method': init.method ?? 'GET',
      'server.address': URL.parse(url)?.host ?? '',
    });
    try {
      const response = await span.run(() => fetch(url, init));
      span.set({ 'http.response.status_code': response.status });
      span.end(response.status >= 400 ? String(response.status) : undefined);
      return response;
    } catch (error) {
      span.end('oauth_request_failed');
      throw error;
    }
  };
}

/** Which step of the flow a call is, from its method, path and the form's `grant_type`. */
function stepOf(url: string, init: OAuthFetchInit): string {
  const path = URL.parse(url)?.pathname ?? '';
  if ((init.method ?? 'GET') === 'GET') return path.includes('/.well-known/') ? 'discovery' : 'fetch';
  const body = init.body;
  if (body instanceof URLSearchParams || typeof body === 'string') {
    const form = body instanceof URLSearchParams ? body : new URLSearchParams(body);
    const grant = form.get('grant_type');
    if (grant === 'refresh_token') return 'refresh';
    if (grant !== null) return 'token';
    if (form.has('token')) return 'revocation';
    if (typeof body === 'string' && body.trimStart().startsWith('{')) return 'registration';
  }
  return 'request';
}
