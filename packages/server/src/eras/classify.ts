/**
 * @module eras/classify
 * The two wire eras of MCP and what tells them apart: a *session*-era (2025) client opens with
 * `initialize`; a *modern* (2026-07-28) client names its version, identity and capabilities in
 * every request's `_meta`. Helpers here read and write that `_meta`, and classify what a server
 * answered, following the spec's back-compat rules ("a recognized modern JSON-RPC error
 * identifies a modern server; anything else identifies a legacy server"; this code calls that era
 * the session era).
 */
import type { JsonObject, JsonRpcMessage, JsonRpcRequest } from '../jsonrpc.ts';
import {
  declaredVersion,
  FIRST_MODERN_VERSION,
  isModernVersion,
  META_PROTOCOL_VERSION,
} from '../upstream/request-metadata.ts';

/** Which side of the protocol split a client or server speaks. */
export type Era = 'modern' | 'session';

/** What an operator may pin for a configured server: which era(s) it speaks. */
export type ProtocolChoice = 'auto' | 'modern' | 'session';

/** Session-era versions the proxy speaks, newest first. */
export const SESSION_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;
/** The newest session-era version: what the proxy negotiates when it must pick one. */
export const LATEST_SESSION_VERSION = SESSION_VERSIONS[0];
/** The session-era version a server answering `initialize` with `asked` picks: it, when spoken. */
export function negotiatedSessionVersion(asked: unknown): string {
  return SESSION_VERSIONS.find((known) => known === asked) ?? LATEST_SESSION_VERSION;
}
/** The modern version the proxy speaks. */
export const MODERN_VERSION = FIRST_MODERN_VERSION;

/** `_meta` keys of the modern era. */
export const META = {
  protocolVersion: META_PROTOCOL_VERSION,
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

const MODERN_META_PREFIX = 'io.modelcontextprotocol/';
/** Result fields only the modern era has. */
const MODERN_RESULT_FIELDS = ['resultType', 'ttlMs', 'cacheScope'] as const;

/**
 * The era a client speaks, judged from one request (and its `MCP-Protocol-Version` header on
 * HTTP): a modern version in either place makes it modern, and so does a `_meta` protocol
 * version that is no session-era one (an envelope naming a revision nobody speaks, such as a
 * future one, is still a modern client's: it is owed an UnsupportedProtocolVersionError, -32022,
 * not the session era's "no session" refusal).
 */
export function clientEraOf(message: JsonRpcMessage, headerVersion?: string): Era {
  const declared = declaredVersion(message);
  if (isModernVersion(headerVersion) || isModernVersion(declared)) return 'modern';
  return declared !== undefined && !(SESSION_VERSIONS as readonly string[]).includes(declared)
    ? 'modern'
    : 'session';
}

/** The `_meta` of a request, or an empty object. */
export function metaOf(message: JsonRpcRequest): JsonObject {
  const meta = message.params?._meta;
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? (meta as JsonObject) : {};
}

/** The request with `entries` merged into its `params._meta`. */
export function withMeta(message: JsonRpcRequest, entries: JsonObject): JsonRpcRequest {
  return { ...message, params: { ...message.params, _meta: { ...metaOf(message), ...entries } } };
}

/** The request without the modern `io.modelcontextprotocol/*` `_meta` keys (a session-era server's view). */
export function withoutModernMeta(message: JsonRpcRequest): JsonRpcRequest {
  const meta = metaOf(message);
  const kept = Object.fromEntries(
    Object.entries(meta).filter(([key]) => !key.startsWith(MODERN_META_PREFIX)),
  );
  const params: JsonObject = { ...message.params };
  if (Object.keys(kept).length > 0) params._meta = kept;
  else delete params._meta;
  return { ...message, params };
}

/** A result without the modern-only fields, for a session-era client. */
export function sessionResult(result: JsonObject): JsonObject {
  const copy = { ...result };
  for (const field of MODERN_RESULT_FIELDS) delete copy[field];
  return copy;
}

/** The proxy's own `server/discover` probe: the modern envelope, no capabilities. */
export function discoverProbe(id: string): JsonRpcRequest {
  return {
    jsonrpc: '2.0',
    id,
    method: 'server/discover',
    params: {
      _meta: {
        [META.protocolVersion]: MODERN_VERSION,
        [META.clientInfo]: { name: 'mcp-proxy', version: '1' },
        [META.clientCapabilities]: {},
      },
    },
  };
}

/** JSON-RPC codes only modern servers use for protocol refusals. */
const MODERN_ERROR_CODES = new Set([-32020, -32021, -32022]);

/** The error object of a JSON-RPC error body, if `value` is one. */
function errorOf(value: unknown): { code?: unknown; data?: unknown } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const error = (value as { error?: unknown }).error;
  return typeof error === 'object' && error !== null
    ? (error as { code?: unknown; data?: unknown })
    : undefined;
}

/** The `supported` versions listed by an UnsupportedProtocolVersionError, if any. */
export function supportedVersionsOf(error: { data?: unknown } | undefined): string[] | undefined {
  const supported = (error?.data as { supported?: unknown } | undefined)?.supported;
  return Array.isArray(supported) ? supported.filter((v): v is string => typeof v === 'string') : undefined;
}

/**
 * Classifies a server's answer to a *modern* request (the spec's HTTP back-compat rule):
 * success or a recognized modern error → the server is modern; any other 4xx → session era;
 * anything else (5xx, 401/403, network) says nothing.
 */
export function modernSupportFromAnswer(status: number, body: unknown): boolean | undefined {
  if (status >= 200 && status < 300) {
    const error = errorOf(body);
    if (!error) return true;
    return isModernError(error);
  }
  if (status === 401 || status === 403 || status === 429 || status < 400 || status >= 500) return undefined;
  const error = errorOf(body);
  return error ? isModernError(error) : false;
}

function isModernError(error: { code?: unknown; data?: unknown }): boolean {
  const supported = supportedVersionsOf(error);
  if (supported) return supported.some(isModernVersion);
  return typeof error.code === 'number' && MODERN_ERROR_CODES.has(error.code);
}

/**
 * True when a server refused a session client's request the way a modern-only server does: an
 * UnsupportedProtocolVersionError listing only modern versions. (A header mismatch, -32020,
 * says nothing of the session era: a dual-era server sends it too, for a request whose headers
 * a caller chose to make disagree.)
 */
export function isModernOnlyRefusal(body: unknown): boolean {
  const supported = supportedVersionsOf(errorOf(body));
  return supported !== undefined && supported.length > 0 && supported.every(isModernVersion);
}

/** Parses a body as JSON, or undefined. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
