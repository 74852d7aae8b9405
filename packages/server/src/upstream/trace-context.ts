/**
 * @module upstream/trace-context
 * How an upstream request carries the proxy's trace context (issue 21): the W3C `traceparent`
 * and `tracestate` headers always, and for a 2026-07-28 message also `params._meta.traceparent`
 * (SEP-414: MCP's own carrier, which survives transports without headers). Used only while
 * tracing is on.
 */
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
