/**
 * @module upstream/status
 * Turns an upstream HTTP error status into the proxy's error codes, keeping what the caller
 * needs: the upstream's own JSON-RPC error message, its status for 4xx, and an intact
 * `WWW-Authenticate` on 401 so OAuth-protected servers keep working.
 */
import { type ErrorData, ProxyError, proxyErrorOf } from '../errors.ts';
import type { JsonRpcMessage, JsonRpcResponse } from '../jsonrpc.ts';
import { headerValue, type UpstreamHttp, type UpstreamResponse } from './http.ts';
import { parseMessages } from './message-source.ts';
import { scrubSecrets } from './scrub.ts';

const MAX_DETAIL = 300;

/** The upstream session a failed request belonged to, and what its caller must never see. */
export interface StatusContext {
  /** The upstream session id in use: scrubbed, and a 404 then means the session expired. */
  readonly sessionId?: string | undefined;
  /** Further secrets to scrub (an HTTP+SSE endpoint's session, say). */
  readonly secrets?: readonly string[] | undefined;
}

/** Reads a failed upstream response and throws the matching {@link ProxyError}. */
export async function rejectStatus(
  http: UpstreamHttp,
  response: UpstreamResponse,
  context: StatusContext,
): Promise<never> {
  let detail: string | undefined;
  try {
    // An upstream may name its session in the message: scrubbed before anything is clipped, so
    // no prefix of a long id survives a cut (callers only ever see the id sealed).
    detail = extractDetail(scrubSecrets(await http.readText(response), secretsOf(context)));
  } catch {
    detail = undefined;
  }
  const status = response.status;
  const data = { upstreamStatus: status, ...(detail ? { upstreamMessage: detail } : {}) };
  const unauthorized = authRefusal(status, headerValue(response.headers, 'www-authenticate'), data);
  if (unauthorized) throw unauthorized;
  if (status === 404 && context.sessionId !== undefined) {
    throw new ProxyError('upstream_session_expired', undefined, { data });
  }
  if (status >= 400 && status < 500) {
    const suffix = detail ? `: ${detail}` : '.';
    throw new ProxyError(
      'upstream_rejected',
      `The MCP server rejected the request (HTTP ${status})${suffix}`,
      {
        status: status === 429 ? 429 : status === 404 ? 404 : 400,
        data,
      },
    );
  }
  throw new ProxyError('upstream_http_error', `The MCP server failed with HTTP ${status}.`, { data });
}

/**
 * The error of an upstream's 401 or 403 (an HTTP answer or a refused WebSocket upgrade), else
 * undefined: `upstream_unauthorized` with the upstream's status and its `WWW-Authenticate`
 * challenge intact, so a caller can follow an OAuth-protected server's challenge.
 */
export function authRefusal(
  status: number,
  challenge: string | undefined,
  data: ErrorData,
): ProxyError | undefined {
  if (status !== 401 && status !== 403) return undefined;
  return new ProxyError('upstream_unauthorized', undefined, {
    status,
    // In the body too: an answer relayed through a session (no HTTP headers of its own) keeps it,
    // so a step-up (403 insufficient_scope) is still recognised (issue 18).
    data: challenge ? { ...data, wwwAuthenticate: challenge.slice(0, 2048) } : data,
    headers: challenge ? { 'www-authenticate': challenge } : {},
  });
}

/**
 * The upstream's 401 or 403 carried in an error answer, as the refusal {@link authRefusal} threw:
 * a session that answers its caller (an era facade) turns the thrown refusal into an answer. Only
 * an answer the proxy made from that refusal counts: an upstream's own answer naming
 * `upstream_unauthorized` in its `data` is just its answer (review10 HARD-3). Undefined otherwise.
 */
export function refusalInAnswer(answer: JsonRpcResponse): ProxyError | undefined {
  const refusal = proxyErrorOf(answer);
  return refusal?.code === 'upstream_unauthorized' ? refusal : undefined;
}

/** Pulls a short human message out of an error body (JSON-RPC error or plain text). */
function extractDetail(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  try {
    const parsed = JSON.parse(trimmed) as { error?: { message?: unknown } | string; message?: unknown };
    const message =
      typeof parsed.error === 'object' && parsed.error !== null
        ? parsed.error.message
        : (parsed.error ?? parsed.message);
    if (typeof message === 'string') return clip(message);
  } catch {
    // Not JSON: fall through to plain text if it looks like a short message, not an HTML page.
  }
  return trimmed.startsWith('<') ? undefined : clip(trimmed);
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_DETAIL ? `${oneLine.slice(0, MAX_DETAIL)}…` : oneLine;
}

/** Everything {@link StatusContext} says to scrub. */
export function secretsOf(context: StatusContext): readonly (string | undefined)[] {
  return [context.sessionId, ...(context.secrets ?? [])];
}

/**
 * The JSON-RPC error in `text` when it answers request `id`, else undefined: a server may refuse
 * a request with a 4xx whose body is the error for that very request (MCP 2026-07-28 does). It
 * goes to the caller as the answer, so the session's secrets are scrubbed from it first.
 */
export function rpcErrorFor(text: string, id: unknown, context: StatusContext): JsonRpcResponse | undefined {
  let messages: JsonRpcMessage[];
  try {
    // The same checks as any upstream message (depth, shape): this one is relayed as it is.
    messages = parseMessages(scrubSecrets(text, secretsOf(context)));
  } catch {
    // Not a JSON-RPC message fit to relay: the status decides.
    return undefined;
  }
  const [value] = messages;
  return messages.length === 1 && value !== undefined && 'error' in value && value.id === id
    ? value
    : undefined;
}
