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

/** Registers the server-span hooks on `app` (call only when `tracing.enabled`). */
export function registerTraceHooks(app: FastifyInstance, tracing: Tracing): void {
  app.decorateRequest('traceSpan', undefined);
  app.addHook('preHandler', (request, _reply, done) => {
    const span = startSpan(request, tracing, performance.timeOrigin + performance.now());
    request.traceSpan = span;
    // Everything the route does from here (hooks, handler, upstream calls) runs under it.
    span.run(done);
  });
  app.addHook('onResponse', (request, reply, done) => {
    let span = request.traceSpan;
    if (span === undefined) {
      const started = performance.timeOrigin + performance.now() - reply.elapsedTime;
      span = startSpan(request, tracing, started);
    }
    span.set({
      'http.response.status_code': reply.statusCode,
      ...(request.mcpMethod === undefined ? {} : { 'mcp.method.name': cap(request.mcpMethod) }),
    });
    span.end(request.errorCode ?? (reply.statusCode >= 500 ? 'internal_error' : undefined));
    done();
  });
}

/** The server span of `request`, from what is known of it so far. */
function startSpan(request: FastifyRequest, tracing: Tracing, startTime: number): ProxySpan {
  const route = request.routeOptions.url ?? 'unknown';
  const message = messageOf(request);
  const headerCarrier = request.headers as Carrier;
  const carrier = typeof headerCarrier.traceparent === 'string' ? headerCarrier : metaOf(message?.params);
  const attributes: Attributes = {
    'http.request.method': request.method,
    'http.route': route,
    'mcp_proxy.surface': surfaceOf(route),
    ...messageAttributes(message),
    ...targetAttributes(request),
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
  const attributes: Attributes = { 'mcp.method.name': cap(message.method) };
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

/** The configured server's name, or the upstream's host (never its path or query). */
function targetAttributes(request: FastifyRequest): Attributes {
  const name = (request.params as { name?: unknown } | undefined)?.name;
  if (typeof name === 'string') return { 'mcp_proxy.server': cap(name) };
  const body = request.body as { server?: unknown; mcp_server_url?: unknown } | undefined;
  if (typeof body !== 'object' || body === null) return {};
  if (typeof body.server === 'string') return { 'mcp_proxy.server': cap(body.server) };
  if (typeof body.mcp_server_url === 'string') {
    const host = URL.parse(body.mcp_server_url)?.host;
    if (host) return { 'server.address': cap(host) };
  }
  return {};
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

function cap(text: string): string {
  return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text;
}
