/**
 * @module policy/grants
 * THE per-principal policy decisions (issue 17): which targets a principal's grants let it
 * reach, and which tools it may see and call. Every surface (POST /proxy, /mcp,
 * /servers/{name}/mcp, /ws) asks these functions, through the target resolver and the tool
 * filter, so a rule changes in one place.
 */
import type { JsonRpcMessage } from '../jsonrpc.ts';

/**
 * The part of a principal's grants (identity/principal.ts `Grants`) these rules read; declared
 * here, structurally, so this lower layer imports nothing from identity/.
 */
export interface TargetGrants {
  readonly servers?: readonly string[] | undefined;
  readonly urls?: readonly string[] | undefined;
  readonly tools?: readonly string[] | undefined;
}

/** What a caller names: a configured server, or a raw URL. */
export type TargetName = { readonly server: string } | { readonly url: string };

/** Matches a raw URL against URL patterns (policy/compiled-patterns.ts keeps them compiled). */
export interface UrlPatternMatcher {
  matchesAny(patterns: readonly string[], raw: string): boolean;
}

/**
 * Whether `grants` let a principal reach a target. Configured names: any, unless `servers` lists
 * them. Raw URLs: any, unless `urls` is set (then only those its patterns match, read by
 * `patterns`: policy/url-pattern.ts) or `servers` is (then none: a principal limited to some
 * servers reaches no URL it was not given).
 */
export function permitsTarget(grants: TargetGrants | undefined, target: { readonly server: string }): boolean;
export function permitsTarget(
  grants: TargetGrants | undefined,
  target: TargetName,
  patterns: UrlPatternMatcher,
): boolean;
export function permitsTarget(
  grants: TargetGrants | undefined,
  target: TargetName,
  patterns?: UrlPatternMatcher,
): boolean {
  if (grants === undefined) return true;
  if ('server' in target) return grants.servers === undefined || grants.servers.includes(target.server);
  // The overloads give every URL a matcher.
  if (grants.urls !== undefined) return patterns?.matchesAny(grants.urls, target.url) === true;
  return grants.servers === undefined;
}

/**
 * Whether a `servers` grant limits which members of a virtual server it sees: it does when it
 * names any server that is not a virtual one (absent, or naming virtual servers only: every member).
 */
export function restrictsMembers(
  servers: readonly string[] | undefined,
  isVirtual: (name: string) => boolean,
): boolean {
  return servers?.some((server) => !isVirtual(server)) ?? false;
}

/**
 * The tools a principal may use on a server: the server's own allowlist and the principal's
 * grant, both applying; `undefined` when neither restricts.
 */
export function visibleTools(
  serverTools: readonly string[] | undefined,
  granted: readonly string[] | undefined,
): readonly string[] | undefined {
  if (granted === undefined) return serverTools;
  if (serverTools === undefined) return granted;
  return serverTools.filter((tool) => granted.includes(tool));
}

/**
 * Whether `message` is a notification (no id) under a method that is not one (a `tools/call`
 * with its id left out, say). The tool grant and the audit judge requests; such a message would
 * run upstream unjudged, so no surface forwards it (issue 17 review, finding 4). Every MCP
 * notification is `notifications/…`.
 */
export function isRequestAsNotification(message: JsonRpcMessage): boolean {
  return 'method' in message && !('id' in message) && !message.method.startsWith('notifications/');
}

/** Whether `message` calls a tool outside `tools` (undefined: every tool is visible). */
export function hidesTool(tools: readonly string[] | undefined, message: JsonRpcMessage): boolean {
  if (tools === undefined || !('method' in message) || message.method !== 'tools/call' || !('id' in message))
    return false;
  const name = message.params?.name;
  return typeof name !== 'string' || !tools.includes(name);
}
