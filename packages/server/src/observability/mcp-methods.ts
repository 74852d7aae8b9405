/**
 * @module observability/mcp-methods
 * The MCP methods the proxy names in metric labels and span names; anything else a caller sends
 * is "other" there, so a made-up method name neither blows up cardinality nor reaches a name.
 */

/** MCP methods named as they are (`response`: a metric's label for a message that answers). */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'subscriptions/listen',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'response',
]);

/** `method` when it is a known MCP method, else `other`. */
export function knownMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}
