/**
 * @module transport/proxy-fetch
 * What both HTTP transports (`http`, `streamable`) make of a failed exchange with the proxy:
 * not reaching it at all, or a refusal (a 4xx/5xx) turned into its error class.
 */
import { MCPProxyError, NetworkError } from '../errors.ts';
import { isObject, parseJson } from '../json.ts';
import type { FetchResponse } from '../options.ts';
import { errorFromProxyFailure } from '../wire-errors.ts';

/**
 * What a failed `fetch` (or body read) of `url` throws: the signal's reason when the call was
 * aborted, else a `network_error` that says where the proxy was looked for.
 */
export function unreachable(url: string, signal: AbortSignal, error: unknown): unknown {
  if (signal.aborted) return signal.reason;
  if (error instanceof MCPProxyError) return error;
  return new NetworkError(
    'network_error',
    `Could not reach the proxy at ${new URL(url).origin} (${describe(error)}). ` +
      'Is it running, and is this page’s origin in its CORS_ORIGINS?',
    { cause: error },
  );
}

/**
 * The error for a proxy answer that is not ok, whose body was read as `text`. `withSession`
 * (Streamable HTTP only) says the answer may be the MCP server's own, relayed, and whether an
 * `Mcp-Session-Id` was sent with the request.
 */
export function refusal(response: FetchResponse, text: string, withSession?: boolean): MCPProxyError {
  return errorFromProxyFailure({
    status: response.status,
    body: parseJson(text),
    requestId: response.headers.get('x-request-id') ?? undefined,
    wwwAuthenticate: response.headers.get('www-authenticate') ?? undefined,
    ...(withSession === undefined ? {} : { relayed: true, withSession }),
  });
}

/** A `fetch` failure in a few words: its message and, from Node's undici, the cause's code. */
function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const code = isObject(cause) && typeof cause.code === 'string' ? `: ${cause.code}` : '';
    return `${error.message}${code}`;
  }
  return String(error);
}
