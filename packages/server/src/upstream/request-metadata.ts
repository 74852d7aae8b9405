/**
 * @module eras/request-metadata
 * MCP 2026-07-28 mirrors parts of each request into HTTP headers (`MCP-Protocol-Version`,
 * `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`) so intermediaries can route without parsing the
 * body; the two must agree. The proxy derives the headers for callers that only send a body
 * (POST /proxy, WS /ws), and refuses a disagreement before spending an upstream call
 * (400, JSON-RPC -32020 HeaderMismatch), as the transport's "Server Validation" section asks
 * of anything that processes the body.
 */
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';

/** The first protocol version without sessions, where request metadata headers are required. */
export const FIRST_MODERN_VERSION = '2026-07-28';
/** The `_meta` key carrying the protocol version of a modern request. */
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
/** Methods whose `Mcp-Name` header mirrors `params.name` or `params.uri`. */
const NAMED_METHODS: Readonly<Record<string, 'name' | 'uri'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
};
const SENTINEL = /^=\?base64\?(.*)\?=$/;
/** Visible ASCII and space, without leading or trailing white space (RFC 9110 field values). */
const PLAIN_VALUE = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

/** True for a protocol version of the sessionless era (dates compare as strings). */
export function isModernVersion(version: string | undefined): boolean {
  return version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= FIRST_MODERN_VERSION;
}

/** The protocol version a request declares in its `_meta`, if any. */
export function declaredVersion(message: JsonRpcMessage): string | undefined {
  if (!('method' in message)) return undefined;
  const meta = message.params?._meta as Record<string, unknown> | undefined;
  const version = meta?.[META_PROTOCOL_VERSION];
  return typeof version === 'string' ? version : undefined;
}

/** Encodes a header value, using the spec's Base64 sentinel when it is not plain ASCII. */
export function encodeHeaderValue(value: string): string {
  if (PLAIN_VALUE.test(value) && !SENTINEL.test(value)) return value;
  return `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** Decodes a header value that may use the Base64 sentinel. */
export function decodeHeaderValue(value: string): string {
  const match = SENTINEL.exec(value);
  return match ? Buffer.from(match[1] ?? '', 'base64').toString('utf8') : value;
}

/** The metadata headers a modern request must carry, derived from its body. */
export function metadataHeaders(message: JsonRpcMessage): Record<string, string> {
  if (!('method' in message)) return {};
  const headers: Record<string, string> = { 'mcp-method': message.method };
  const version = declaredVersion(message);
  if (version !== undefined) headers['mcp-protocol-version'] = version;
  const name = nameOf(message);
  if (name !== undefined) headers['mcp-name'] = encodeHeaderValue(name);
  return headers;
}

/**
 * Refuses a modern request whose headers are missing or disagree with its body. Requests of the
 * session era are left alone: their headers carry no such promise.
 */
export function checkHeaderAgreement(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  message: JsonRpcMessage,
): void {
  if (!('method' in message) || !('id' in message)) return;
  const headerVersion = single(headers['mcp-protocol-version']);
  const bodyVersion = declaredVersion(message);
  if (!isModernVersion(headerVersion) && !isModernVersion(bodyVersion)) return;
  // A modern header over a body whose `_meta` names no version is an incomplete envelope, not a
  // disagreement: the server refuses it as invalid params (-32602), so it is left to the server.
  const incompleteEnvelope = bodyVersion === undefined && isModernVersion(headerVersion);
  if (headerVersion !== bodyVersion && !incompleteEnvelope) {
    mismatch(
      `MCP-Protocol-Version header "${headerVersion ?? ''}" does not match _meta "${bodyVersion ?? ''}"`,
    );
  }
  const method = single(headers['mcp-method']);
  if (method === undefined) mismatch('the Mcp-Method header is missing');
  if (method !== message.method)
    mismatch(`Mcp-Method header "${method}" does not match method "${message.method}"`);
  const expected = nameOf(message);
  const raw = single(headers['mcp-name']);
  if (expected !== undefined && raw === undefined) mismatch('the Mcp-Name header is missing');
  if (raw !== undefined && decodeHeaderValue(raw) !== expected) {
    mismatch(`Mcp-Name header does not match the body's ${NAMED_METHODS[message.method] ?? 'name'}`);
  }
  for (const [name, value] of Object.entries(headers)) {
    if (
      name.startsWith('mcp-param-') &&
      typeof value === 'string' &&
      !SENTINEL.test(value) &&
      !PLAIN_VALUE.test(value)
    ) {
      mismatch(`the ${name} header holds characters that must be Base64-encoded`);
    }
  }
}

/** JSON-RPC codes MCP 2026-07-28 servers use for protocol-level refusals. */
const MODERN_PROTOCOL_ERRORS = new Set([-32020, -32021, -32022]);

/**
 * True when an HTTP error body (its text, or parsed) is a JSON-RPC error only a modern server
 * sends (header mismatch, unsupported version with its `supported` list, missing capability):
 * the spec's back-compat rule says a client then must not fall back to the legacy transport.
 */
export function isModernProtocolError(body: unknown): boolean {
  let parsed = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return false;
    }
  }
  if (typeof parsed !== 'object' || parsed === null) return false;
  const { error } = parsed as { error?: { code?: unknown; data?: { supported?: unknown } } | null };
  const code = error?.code;
  return (
    (typeof code === 'number' && MODERN_PROTOCOL_ERRORS.has(code)) || Array.isArray(error?.data?.supported)
  );
}

function nameOf(message: JsonRpcMessage): string | undefined {
  if (!('method' in message)) return undefined;
  const field = NAMED_METHODS[message.method];
  const value = field ? message.params?.[field] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function mismatch(detail: string): never {
  throw new ProxyError('header_mismatch', `Header mismatch: ${detail}.`);
}
