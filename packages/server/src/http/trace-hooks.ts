/**
 * @module http/trace-hooks
 * The server span of every inbound HTTP request (issue 21), registered only when tracing is on.
 * The span starts once the body is parsed (preHandler), so an inbound trace context is read from
 * the `traceparent` header or, for 2026-07-28 traffic, the message's `_meta.traceparent`
 * (SEP-414); the rest of the request (relay hop, upstream calls) runs with it as parent. A
 * request refused before that (authentication, limits) gets its span when it is answered.
 *
 * Attributes name the surface, route, MCP method, tool / prompt / resource, the server (name
 * or host), era and auth kind; never a token, an argument, a result or a query string.
 */

import type { Attributes } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { knownMethod } from '../observability/mcp-methods.ts';
import type { Carrier, ProxySpan, Tracing } from '../observability/tracing.ts';
import { isModernVersion } from '../upstream/request-metadata.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span (tracing on only). */
    traceSpan: ProxySpan | undefined;
  }
}

/** Longest text attribute taken from a caller (method names, tool names): bounded cardinality of bytes. */
const MAX_TEXT = 128;

/** Whether a name is a configured server's (or virtual server's) now: only those reach a span. */
export type ServerNamed = (name: string) => boolean;

/** Registers the server-span hooks on `app` (call only when `tracing.enabled`). */
export function registerTraceHooks(app: FastifyInstance, tracing: Tracing, configured: ServerNamed): void {
  app.decorateRequest('traceSpan', undefined);
  app.addHook('preHandler', (request, _reply, done) => {
    const span = startSpan(request, tracing, configured, performance.timeOrigin + performance.now());
    request.traceSpan = span;
    // Everything the route does from here (hooks, handler, upstream calls) runs under it.
    span.run(done);
  });
  app.addHook('onResponse', (request, reply, done) => {
    let span = request.traceSpan;
    if (span === undefined) {
      const started = performance.timeOrigin + performance.now() - reply.elapsedTime;
      span = startSpan(request, tracing, configured, started);
    }
    span.set({
      'http.response.status_code': reply.statusCode,
      ...(request.mcpMethod === undefined ? {} : { 'mcp.method.name': knownMethods(request.mcpMethod) }),
    });
    span.end(request.errorCode ?? (reply.statusCode >= 500 ? 'internal_error' : undefined));
    done();
  });
}

/** The server span of `request`, from what is known of it so far. */
function startSpan(
  request: FastifyRequest,
  tracing: Tracing,
  configured: ServerNamed,
  startTime: number,
): ProxySpan {
  const route = request.routeOptions.url ?? 'unknown';
  const message = messageOf(request);
  const headerCarrier = request.headers as Carrier;
  const carrier = typeof headerCarrier.traceparent === 'string' ? headerCarrier : metaOf(message?.params);
  const attributes: Attributes = {
    'http.request.method': request.method,
    'http.route': route,
    'mcp_proxy.surface': surfaceOf(route),
    ...messageAttributes(message),
    ...targetAttributes(request, configured),
  };
  const version = request.headers['mcp-protocol-version'];
  if (typeof version === 'string' && version !== '') {
    attributes['mcp.protocol.version'] = cap(version);
    attributes['mcp_proxy.era'] = isModernVersion(version) ? 'modern' : 'session';
  } else if (typeof metaOf(message?.params)?.[PROTOCOL_META] === 'string') {
    attributes['mcp_proxy.era'] = 'modern';
  }
  const identity = request.identity;
  if (identity !== undefined) {
    attributes['mcp_proxy.auth.kind'] = identity.auth;
    if (tracing.recordSubject) attributes['enduser.id'] = identity.subject;
  }
  // A caller's own method name never names a span (cardinality, and whatever it carries).
  const name = message?.method === undefined ? `${request.method} ${route}` : knownMethod(message.method);
  return tracing.server(name, carrier, attributes, startTime);
}

/** The `_meta` key a 2026-07-28 message names its protocol version by. */
const PROTOCOL_META = 'io.modelcontextprotocol/protocolVersion';

/** The JSON-RPC fields of the body: a message on /mcp, the envelope's own on POST /proxy. */
export interface MessageFields {
  readonly method?: string;
  readonly params?: unknown;
}

function messageOf(request: FastifyRequest): MessageFields | undefined {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { method, params } = body as { method?: unknown; params?: unknown };
  return { ...(typeof method === 'string' ? { method } : {}), params };
}

/** A message's `params._meta`: where a 2026-07-28 message carries its trace context (SEP-414). */
export function metaOf(params: unknown): Record<string, unknown> | undefined {
  if (typeof params !== 'object' || params === null) return undefined;
  const meta = (params as { _meta?: unknown })._meta;
  return typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>) : undefined;
}

/** The method and the tool, prompt or resource a message names (names only: never its arguments). */
export function messageAttributes(message: MessageFields | undefined): Attributes {
  if (message?.method === undefined) return {};
  // A caller's own method name never reaches an attribute either: "other" (review of issue 21).
  const attributes: Attributes = { 'mcp.method.name': knownMethod(message.method) };
  const params = message.params as { name?: unknown; uri?: unknown } | undefined;
  if (typeof params !== 'object' || params === null) return attributes;
  if (message.method === 'tools/call' && typeof params.name === 'string')
    attributes['gen_ai.tool.name'] = cap(params.name);
  if (message.method === 'prompts/get' && typeof params.name === 'string')
    attributes['gen_ai.prompt.name'] = cap(params.name);
  if (message.method.startsWith('resources/') && typeof params.uri === 'string') {
    const origin = resourceOrigin(params.uri);
    if (origin !== undefined) attributes['mcp_proxy.resource.origin'] = cap(origin);
  }
  return attributes;
}

/**
 * The configured server's name, or the upstream's host (never its path or query). A name no
 * configured server has is the caller's text: left out (the refusal's code says what went wrong).
 */
function targetAttributes(request: FastifyRequest, configured: ServerNamed): Attributes {
  const name = (request.params as { name?: unknown } | undefined)?.name;
  if (typeof name === 'string') return serverAttributes(name, configured);
  const body = request.body as { server?: unknown; mcp_server_url?: unknown } | undefined;
  if (typeof body !== 'object' || body === null) return {};
  if (typeof body.server === 'string') return serverAttributes(body.server, configured);
  return urlAttributes(typeof body.mcp_server_url === 'string' ? body.mcp_server_url : undefined);
}

/** `mcp_proxy.server` for a configured server's name; nothing for any other text. */
export function serverAttributes(name: string, configured: ServerNamed): Attributes {
  return configured(name) ? { 'mcp_proxy.server': name } : {};
}

/** `server.address` for an upstream a caller named by URL: its host alone. */
export function urlAttributes(url: string | undefined): Attributes {
  const host = url === undefined ? undefined : URL.parse(url)?.host;
  return host ? { 'server.address': cap(host) } : {};
}

function surfaceOf(route: string): string {
  if (route === '/proxy') return 'proxy';
  if (route === '/mcp' || route === '/servers/:name/mcp') return 'mcp';
  if (route === '/ws') return 'ws';
  return 'http';
}

/**
 * A resource URI's scheme, and its host when it has one (`https://files.example`, `data:`,
 * `vault:`): never its path, opaque part, query, fragment or user info. Those are the argument of
 * resources/read and can be the secret itself (a data: URI, a capability URL, `vault:token=…`).
 * Undefined when it does not parse.
 */
function resourceOrigin(uri: string): string | undefined {
  const parsed = URL.parse(uri);
  if (parsed === null) return undefined;
  return parsed.host === '' ? parsed.protocol : `${parsed.protocol}//${parsed.host}`;
}

/** A comma-joined list of methods (a batch's, on /mcp), each a known one or "other". */
function knownMethods(methods: string): string {
  return cap(methods.split(',', MAX_TEXT).map(knownMethod).join(','));
}

function cap(text: string): string {
  return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text;
}
