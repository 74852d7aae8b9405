/**
 * @module virtual/client-view
 * A member's answers as the virtual server's client sees them (issue 20): every resource URI a
 * result carries (a tool result's `resource_link` and embedded resources, a prompt's messages,
 * a read's `contents`) is the virtual server's `mcpp://<member>/<uri>`, so a client can read
 * what a tool linked through the same endpoint. Nothing else of a result is touched. A member's
 * notifications name the member where the client could not tell them apart otherwise. What is
 * mapped, and how, is the virtual server's {@link MemberMapping} (nothing, for one member with
 * `prefix: none`).
 */
import { asObject, type JsonObject, type JsonRpcMessage, type JsonRpcResponse } from '../jsonrpc.ts';
import type { MemberMapping } from './member-names.ts';

/** The member's response with the resource URIs of its result mapped; an error is left as it is. */
export function exposedAnswer(
  member: string,
  answer: JsonRpcResponse,
  mapping: MemberMapping,
): JsonRpcResponse {
  if (!('result' in answer)) return answer;
  const { result } = answer;
  const mapped: JsonObject = { ...result };
  let changed = false;
  // A tool result's content, a prompt's messages' content, a read's contents.
  if (Array.isArray(result.content)) {
    mapped.content = result.content.map((part) => exposedContent(member, part, mapping));
    changed = true;
  }
  if (Array.isArray(result.messages)) {
    mapped.messages = result.messages.map((message) => {
      const object = asObject(message);
      return 'content' in object
        ? { ...object, content: exposedContent(member, object.content, mapping) }
        : message;
    });
    changed = true;
  }
  if (Array.isArray(result.contents)) {
    mapped.contents = result.contents.map((entry) => withExposedUri(member, entry, mapping));
    changed = true;
  }
  return changed ? { ...answer, result: mapped } : answer;
}

/**
 * A member's notification or request as the client sees it: a resource update names the
 * virtual server's URI, a log message names the member as (the head of) its logger; anything
 * else (progress under the client's own token, list changes, server requests) as it is.
 */
export function exposedMessage(
  member: string,
  message: JsonRpcMessage,
  mapping: MemberMapping,
): JsonRpcMessage {
  if (!('method' in message) || message.params === undefined) return message;
  const { params } = message;
  if (message.method === 'notifications/resources/updated' && typeof params.uri === 'string') {
    return { ...message, params: { ...params, uri: mapping.uri(member, params.uri) } };
  }
  if (message.method === 'notifications/message') {
    const logger = mapping.logger(member, params.logger);
    return { ...message, params: { ...params, ...(logger === undefined ? {} : { logger }) } };
  }
  return message;
}

/** One content block: a `resource_link` names a URI, an embedded `resource` carries one. */
function exposedContent(member: string, part: unknown, mapping: MemberMapping): unknown {
  const block = asObject(part);
  if (block.type === 'resource_link') return withExposedUri(member, part, mapping);
  if (block.type === 'resource' && 'resource' in block) {
    return { ...block, resource: withExposedUri(member, block.resource, mapping) };
  }
  return part;
}

/** An object whose string `uri` is the member's, as the client sees it (anything else as it is). */
function withExposedUri(member: string, value: unknown, mapping: MemberMapping): unknown {
  const object = asObject(value);
  return typeof object.uri === 'string' ? { ...object, uri: mapping.uri(member, object.uri) } : value;
}
