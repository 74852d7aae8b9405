/**
 * @module virtual/virtual-routes
 * Which method of a request to a virtual server goes where (virtual-servers.ts takes the message,
 * one request's view of the members answers it: member-view.ts). A 2026-07-28 client's request
 * is answered as a 2025 one (the members' sessions are the proxy's own), its result marked
 * complete, and `server/discover` here; a version the proxy does not speak is refused as MCP says.
 */
import type { VirtualServerSettings } from '../config/virtual-servers.ts';
import { clientEraOf, META, MODERN_VERSION, SESSION_VERSIONS, withoutModernMeta } from '../eras/classify.ts';
import { protocolError } from '../errors.ts';
import type { JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.ts';
import { declaredVersion } from '../upstream/request-metadata.ts';
import { VERSION } from '../version.ts';
import { MODERN_CAPABILITIES, PROMPTS, RESOURCES, TEMPLATES, TOOLS } from './catalogs.ts';
import type { MemberView } from './member-view.ts';
import { SEARCH_MODE_TOOLS } from './tool-search.ts';

/** Results a 2026-07-28 client may cache: they carry cache hints (private, never reused). */
const CACHEABLE: ReadonlySet<string> = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** A request to the virtual server `name`: its settings, and its view of the members (made once asked). */
export interface Routed {
  readonly name: string;
  readonly settings: VirtualServerSettings;
  /** The caller's `MCP-Protocol-Version` header, if any (it marks a 2026-07-28 caller). */
  readonly protocolVersion?: string | undefined;
  readonly view: () => MemberView;
}

/** Answers a request to a virtual server, by its era and method. */
export async function answerRouted(routed: Routed, message: JsonRpcRequest): Promise<JsonRpcResponse> {
  if (clientEraOf(message, routed.protocolVersion) === 'modern') {
    const asked = declaredVersion(message) ?? routed.protocolVersion;
    if (asked !== MODERN_VERSION) {
      // MCP's own signal: the client picks a version both sides speak.
      return protocolError(message.id, 'unsupported_protocol_version', 'Unsupported protocol version.', {
        supported: [MODERN_VERSION, ...SESSION_VERSIONS],
      });
    }
    return answerModern(routed, message);
  }
  return route(routed, message);
}

/**
 * A 2026-07-28 client's request: `server/discover` is answered here; anything else is routed
 * as a 2025 one (the members' sessions are the proxy's own), its result marked complete and,
 * for what a client may cache, private and not to be reused (each principal's view differs).
 */
async function answerModern(routed: Routed, message: JsonRpcRequest): Promise<JsonRpcResponse> {
  if (message.method === 'server/discover') {
    return {
      jsonrpc: '2.0',
      id: message.id,
      result: {
        resultType: 'complete',
        supportedVersions: [MODERN_VERSION],
        ttlMs: 0,
        cacheScope: 'private',
        capabilities: MODERN_CAPABILITIES,
        _meta: { [META.serverInfo]: { name: routed.name, version: VERSION } },
      },
    };
  }
  const answer = await route(routed, withoutModernMeta(message));
  if (!('result' in answer)) return answer;
  const hints = CACHEABLE.has(message.method) ? { ttlMs: 0, cacheScope: 'private' } : {};
  return { ...answer, result: { ...answer.result, resultType: 'complete', ...hints } };
}

/** A 2025-era request (or a 2026-07-28 one read as such), sent where its method goes. */
function route(routed: Routed, message: JsonRpcRequest): Promise<JsonRpcResponse> | JsonRpcResponse {
  const { settings } = routed;
  const view = routed.view();
  switch (message.method) {
    case 'initialize':
      return view.initialize(message);
    case 'ping':
      return { jsonrpc: '2.0', id: message.id, result: {} };
    case 'tools/list':
      return settings.toolSearch
        ? { jsonrpc: '2.0', id: message.id, result: { tools: [...SEARCH_MODE_TOOLS] } }
        : view.list(message, TOOLS);
    case 'tools/call':
      return settings.toolSearch ? view.searchModeCall(message) : view.callNamed(message, TOOLS);
    case 'prompts/list':
      return view.list(message, PROMPTS);
    case 'prompts/get':
      return view.callNamed(message, PROMPTS);
    case 'resources/list':
      return view.list(message, RESOURCES);
    case 'resources/templates/list':
      return view.list(message, TEMPLATES);
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return view.callNamed(message, RESOURCES);
    case 'logging/setLevel':
      return view.fanOut(message, 'logging');
    case 'completion/complete':
      return view.complete(message);
    default:
      return protocolError(message.id, 'method_not_found', `Method not found: ${message.method}`);
  }
}
