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

/**
 * Whether `grants` let a principal reach a target. Configured names: any, unless `servers` lists
 * them. Raw URLs: any, unless `urls` is set (then only those its patterns match) or `servers`
 * is (then none: a principal limited to some servers reaches no URL it was not given).
 */
export function permitsTarget(grants: TargetGrants | undefined, target: TargetName): boolean {
  if (grants === undefined) return true;
  if ('server' in target) return grants.servers === undefined || grants.servers.includes(target.server);
  if (grants.urls !== undefined) return grants.urls.some((pattern) => urlMatches(pattern, target.url));
  return grants.servers === undefined;
}

/**
 * Whether `raw` matches a URL pattern: `*` stands for any run of characters within one host
 * label, port or path segment, `**` for any run within the host and port, or any run at all in
 * the path. The URL is compared as scheme, host,
 * port and normalised path (`..` resolved, default port dropped); its query, fragment and any
 * user info never decide.
 */
export function urlMatches(pattern: string, raw: string): boolean {
  const url = URL.parse(raw);
  if (url === null) return false;
  const subject = `${url.protocol}//${url.host}${url.pathname}`;
  return patternRegExp(pattern).test(subject);
}

/** What a wildcard of a URL pattern may span: one host label or port, no `/`, or anything. */
export type PatternSpan = 'label' | 'segment' | 'any';

/** A piece of a URL pattern: literal text, or a wildcard. */
export type PatternPart = { readonly text: string } | { readonly span: PatternSpan };

/** The regular expression each span stands for. */
const SPAN_SOURCE: Readonly<Record<PatternSpan, string>> = { label: '[^/.:]*', segment: '[^/]*', any: '.*' };

/**
 * A URL pattern as the pieces it matches, in order (scheme and authority lowercased): what
 * {@link patternRegExp} compiles and what policy/grant-within.ts compares patterns by.
 */
export function patternParts(pattern: string): PatternPart[] {
  // URL.parse lowercases scheme and host, so the pattern's are too; paths keep their case.
  const slash = pattern.indexOf('/', pattern.indexOf('//') + 2);
  const authority = slash === -1 ? pattern : pattern.slice(0, slash);
  const path = slash === -1 ? '/' : pattern.slice(slash);
  // Nothing in the authority spans a `/`: `https://**.example.com` must not match
  // `https://evil.test/x.example.com`.
  return [...split(authority.toLowerCase(), 'label', 'segment'), ...split(path, 'segment', 'any')];
}

/** The regular expression of a URL pattern (scheme and authority matched case-insensitively). */
export function patternRegExp(pattern: string): RegExp {
  const source = patternParts(pattern)
    .map((part) => ('text' in part ? escapeRegExp(part.text) : SPAN_SOURCE[part.span]))
    .join('');
  return new RegExp(`^${source}$`);
}

/** A pattern part's pieces: `one` is what a single `*` may span there, `many` what `**` may. */
function split(part: string, one: PatternSpan, many: PatternSpan): PatternPart[] {
  return part
    .split(/(\*\*|\*)/)
    .filter((piece) => piece !== '')
    .map((piece) => (piece === '**' ? { span: many } : piece === '*' ? { span: one } : { text: piece }));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
