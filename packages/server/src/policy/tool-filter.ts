/**
 * @module policy/tool-filter
 * A per-server tool allowlist from the operator's config: `tools/list` answers show only the
 * allowed tools and a `tools/call` for any other is answered as the spec answers an unknown
 * tool, so callers cannot tell a hidden tool from one that does not exist.
 */
import { protocolError } from '../errors.ts';
import type { JsonRpcMessage, JsonRpcResponse } from '../jsonrpc.ts';
import { hidesTool } from './grants.ts';

/**
 * Applies a tool allowlist: a server's own, narrowed by the caller's grant (policy/grants.ts
 * decides; see `visibleTools`).
 */
export class ToolFilter {
  readonly #tools: readonly string[];
  readonly #allowed: ReadonlySet<string>;

  constructor(allowed: readonly string[]) {
    this.#tools = allowed;
    this.#allowed = new Set(allowed);
  }

  /** The answer to a `tools/call` of a tool outside the allowlist; undefined when allowed. */
  refusal(message: JsonRpcMessage): JsonRpcResponse | undefined {
    if (!hidesTool(this.#tools, message) || !('method' in message) || !('id' in message)) return undefined;
    const name = message.params?.name;
    // Only a string is echoed: any other name (an object, say) is not text to show.
    return protocolError(
      message.id,
      'invalid_params',
      `Unknown tool: ${typeof name === 'string' ? name : typeof name}`,
    );
  }

  /** True when `message` is a request whose answer must be filtered. */
  filters(message: JsonRpcMessage): boolean {
    return 'method' in message && message.method === 'tools/list' && 'id' in message;
  }

  /**
   * A `tools/list` answer with only the allowed tools. The answer is an upstream's: entries of
   * any shape (`null`, a number) are dropped, never read as tools (issue 14, finding 1).
   */
  filter(response: JsonRpcResponse): JsonRpcResponse {
    if (!('result' in response)) return response;
    const tools = response.result.tools;
    if (!Array.isArray(tools)) return response;
    const visible = tools.filter((tool: unknown) => {
      const name = typeof tool === 'object' && tool !== null ? (tool as { name?: unknown }).name : undefined;
      return typeof name === 'string' && this.#allowed.has(name);
    });
    return { ...response, result: { ...response.result, tools: visible } };
  }
}

/** The filter for a target, when it has an allowlist (its server's and its caller's grant). */
export function toolFilterFor(target: {
  readonly tools?: readonly string[] | undefined;
}): ToolFilter | undefined {
  return target.tools === undefined ? undefined : new ToolFilter(target.tools);
}
