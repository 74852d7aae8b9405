/**
 * @module jsonrpc
 * JSON-RPC 2.0 message shapes as MCP uses them, and cheap structural checks for messages that
 * come back from upstream (a full schema parse per message would dominate the proxy's cost).
 */

/** A request or notification id. */
export type RequestId = string | number;

/** A JSON object. */
export type JsonObject = { [key: string]: unknown };

/** A JSON-RPC request (has `id` and `method`). */
export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: RequestId;
  method: string;
  params?: JsonObject;
}

/** A JSON-RPC notification (has `method`, no `id`). */
export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: JsonObject;
}

/** A JSON-RPC success response. */
export interface JsonRpcResult {
  jsonrpc: '2.0';
  id: RequestId;
  result: JsonObject;
}

/** A JSON-RPC error response. */
export interface JsonRpcError {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: { code: number; message: string; data?: unknown };
}

/** Any response. */
export type JsonRpcResponse = JsonRpcResult | JsonRpcError;

/** Any message on an MCP connection. */
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** `value` when it is a JSON object, else an empty one (for reading what a peer sent). */
export function asObject(value: unknown): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : {};
}

/** The messages of one HTTP body: a single message, or a batch. */
export interface MessageBatch {
  readonly messages: JsonRpcMessage[];
  /** True when they came as a JSON array (the answer is an array too). */
  readonly batch: boolean;
}

/** True for a well-formed JSON-RPC 2.0 message (structural check only). */
export function isJsonRpcMessage(value: unknown): value is JsonRpcMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return false;
  if (typeof m.method === 'string') return m.id === undefined || isId(m.id);
  if ('result' in m) return isId(m.id);
  if (typeof m.error === 'object' && m.error !== null) return m.id === null || isId(m.id);
  return false;
}

/** True for a request (a message that expects a response). */
export function isRequest(message: JsonRpcMessage): message is JsonRpcRequest {
  return 'method' in message && 'id' in message && message.id !== undefined;
}

/** True for a notification. */
export function isNotification(message: JsonRpcMessage): message is JsonRpcNotification {
  return 'method' in message && !('id' in message && message.id !== undefined);
}

/** True for a response (result or error). */
export function isResponse(message: JsonRpcMessage): message is JsonRpcResponse {
  return !('method' in message);
}

function isId(value: unknown): value is RequestId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/** What a protocol version may look like: it goes back out in `MCP-Protocol-Version` headers. */
const VERSION_TOKEN = /^[0-9A-Za-z._-]{1,64}$/;

/**
 * The negotiated protocol version when `message` is an initialize result, else undefined. The
 * result comes from an upstream: any shape is read safely, and a version that could not be
 * sent as a header is ignored.
 */
export function initializeResultVersion(message: JsonRpcMessage): string | undefined {
  if (!('result' in message)) return undefined;
  const result: unknown = message.result;
  if (typeof result !== 'object' || result === null) return undefined;
  const { protocolVersion, serverInfo } = result as { protocolVersion?: unknown; serverInfo?: unknown };
  // Only an initialize result carries protocolVersion next to serverInfo.
  return typeof protocolVersion === 'string' &&
    serverInfo !== undefined &&
    VERSION_TOKEN.test(protocolVersion)
    ? protocolVersion
    : undefined;
}

/** A map key for a request id that keeps 1 and "1" apart. */
export function requestKey(id: RequestId): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

/** The request id behind a {@link requestKey}. */
export function requestIdOf(key: string): RequestId {
  return key.startsWith('n:') ? Number(key.slice(2)) : key.slice(2);
}

/** The method that tells a peer to stop working on a request (MCP, cancellation). */
const CANCELLED = 'notifications/cancelled';

/** The `notifications/cancelled` telling a peer that request `requestId` is abandoned, and why. */
export function cancelledNotice(requestId: RequestId, reason: string): JsonRpcNotification {
  return { jsonrpc: '2.0', method: CANCELLED, params: { requestId, reason } };
}

/**
 * The id of the request `message` cancels, when it is a `notifications/cancelled`; undefined
 * for any other message, and for a notice whose `requestId` is no id (a peer's mistake, ignored).
 */
export function cancelledRequestId(message: JsonRpcMessage): RequestId | undefined {
  if (!('method' in message) || message.method !== CANCELLED) return undefined;
  const requestId = message.params?.requestId;
  return typeof requestId === 'string' || typeof requestId === 'number' ? requestId : undefined;
}
