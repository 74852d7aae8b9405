/**
 * @module upstream/trace-context
 * How an upstream request carries the proxy's trace context (issue 21): the W3C `traceparent`
 * and `tracestate` headers always, and for a 2026-07-28 message also `params._meta.traceparent`
 * (SEP-414: MCP's own carrier, which survives transports without headers); over WebSocket and
 * stdio, `_meta` alone, for every request. Used only while tracing is on.
 */
import { findProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import { knownMethod } from '../observability/mcp-methods.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { UpstreamRequest } from './http.ts';
import { isModernVersion } from './request-metadata.ts';

/** `init` with `context` (`traceparent`, `tracestate`) in its headers and, when modern, its body. */
export function withTraceContext(init: UpstreamRequest, context: Record<string, string>): UpstreamRequest {
  if (context.traceparent === undefined) return init;
  const headers = { ...init.headers, ...context };
  const modern = isModernVersion(init.headers['mcp-protocol-version']);
  const body = modern && init.body !== undefined ? withMetaContext(init.body, context) : init.body;
  return { ...init, headers, ...(body === undefined ? {} : { body }) };
}

/** A JSON-RPC request or notification's text with the context in `params._meta`; else unchanged. */
export function withMetaContext(body: string, context: Record<string, string>): string {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return body;
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return body;
  const fields = message as { method?: unknown; params?: unknown };
  if (typeof fields.method !== 'string') return body;
  const params =
    typeof fields.params === 'object' && fields.params !== null && !Array.isArray(fields.params)
      ? (fields.params as Record<string, unknown>)
      : fields.params === undefined
        ? {}
        : undefined;
  if (params === undefined) return body;
  const meta = typeof params._meta === 'object' && params._meta !== null ? params._meta : {};
  return JSON.stringify({ ...fields, params: { ...params, _meta: { ...meta, ...context } } });
}

/**
 * Sends `message` over a transport without headers (WebSocket, stdio) in a client span: a
 * request or notification carries the span's context in `params._meta` (its only carrier
 * there), whatever its era. Responses go as they are.
 */
export async function sendTraced(
  tracing: Tracing,
  transport: 'websocket' | 'stdio',
  message: JsonRpcMessage,
  send: (message: JsonRpcMessage) => Promise<void>,
): Promise<void> {
  if (!('method' in message)) return send(message);
  const span = tracing.client(`${transport} send`, {
    'network.transport': transport,
    // The caller's method name is its own text: a known method or "other" (as on server spans).
    'mcp.method.name': knownMethod(message.method),
  });
  try {
    await send(withMeta(message, span.headers()));
    span.end();
  } catch (error) {
    span.end(findProxyError(error)?.code ?? 'internal_error');
    throw error;
  }
}

/** `message` with `context` in `params._meta` (params that are not an object: unchanged). */
function withMeta<T extends JsonRpcMessage & { params?: unknown }>(
  message: T,
  context: Record<string, string>,
): T {
  if (context.traceparent === undefined) return message;
  const params = message.params;
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params)))
    return message;
  const fields = (params ?? {}) as Record<string, unknown>;
  const meta = typeof fields._meta === 'object' && fields._meta !== null ? fields._meta : {};
  return { ...message, params: { ...fields, _meta: { ...meta, ...context } } };
}
