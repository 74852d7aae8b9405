/**
 * @module surfaces/ws/frame-messages
 * The JSON-RPC messages one `/ws` text frame carries (a message or a batch), or why the frame
 * is refused: too deep, not JSON, not JSON-RPC, or a batch over the limit.
 */
import { ProxyError } from '../../errors.ts';
import { exceedsJsonDepth } from '../../json-depth.ts';
import { isJsonRpcMessage, type JsonRpcMessage, type RequestId } from '../../jsonrpc.ts';

/** A refused frame: the error to answer, and the id to answer it under (if one was readable). */
export interface FrameRefusal {
  readonly error: ProxyError;
  readonly id: RequestId | null;
}

/** The id a parsed value carries, when it is one a JSON-RPC error may name. */
export function readableId(value: unknown): RequestId | null {
  const id = (value as { id?: unknown } | null)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

/** The messages of a frame's text, or its refusal. */
export function frameMessages(text: string, maxBatchMessages: number): JsonRpcMessage[] | FrameRefusal {
  if (exceedsJsonDepth(text)) return { error: new ProxyError('json_too_deep'), id: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: new ProxyError('parse_error', 'Parse error: the frame is not valid JSON.'), id: null };
  }
  const messages = Array.isArray(parsed) ? parsed : [parsed];
  if (messages.length === 0 || !messages.every(isJsonRpcMessage))
    return { error: new ProxyError('invalid_message'), id: readableId(parsed) };
  if (messages.length > maxBatchMessages)
    return {
      error: new ProxyError('batch_too_large', undefined, { data: { limit: maxBatchMessages } }),
      id: null,
    };
  return messages as JsonRpcMessage[];
}
