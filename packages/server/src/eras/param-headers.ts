/**
 * @module protocol/param-headers
 * MCP 2026-07-28 lets a tool mark parameters with `x-mcp-header`; a client calling it over
 * Streamable HTTP must mirror their values into `Mcp-Param-{Name}` headers. Callers that only
 * send bodies (POST /proxy, WS /ws) cannot, so the proxy learns each upstream's declarations
 * from the `tools/list` answers passing through it and adds the headers itself.
 */
import { ProxyError } from '../errors.ts';
import { TtlCache } from '../ttl-cache.ts';
import { encodeHeaderValue } from './request-metadata.ts';

/** One declared header: its name and the property path (of `properties` keys) it mirrors. */
export interface ParamHeader {
  readonly header: string;
  readonly path: readonly string[];
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_TARGETS = 1_000;
const MAX_TOOLS = 1_000;
const LOOKUP_INTERVAL_MS = 30_000;

/** The `x-mcp-header` declarations of one input schema (only statically reachable ones). */
export function declaredParamHeaders(schema: unknown, path: readonly string[] = []): ParamHeader[] {
  const properties = (schema as { properties?: unknown } | undefined)?.properties;
  if (typeof properties !== 'object' || properties === null) return [];
  const found: ParamHeader[] = [];
  for (const [key, property] of Object.entries(properties as Record<string, unknown>)) {
    const name = (property as { 'x-mcp-header'?: unknown } | null)?.['x-mcp-header'];
    if (typeof name === 'string' && TOKEN.test(name))
      found.push({ header: `mcp-param-${name.toLowerCase()}`, path: [...path, key] });
    found.push(...declaredParamHeaders(property, [...path, key]));
  }
  return found;
}

/** The headers for one call's arguments: strings as they are, integers and booleans as text. */
export function paramHeaderValues(declared: readonly ParamHeader[], args: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const { header, path } of declared) {
    let value: unknown = args;
    for (const key of path) value = (value as Record<string, unknown> | null | undefined)?.[key];
    if (typeof value === 'string') headers[header] = encodeHeaderValue(value);
    else if (typeof value === 'boolean' || (typeof value === 'number' && Number.isSafeInteger(value))) {
      headers[header] = String(value);
    }
  }
  return headers;
}

const SENTINEL = /^=\?base64\?(.*)\?=$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Refuses a call whose `Mcp-Param-*` headers disagree with its arguments, as a 2026-07-28 server
 * must (400, -32020): a declared parameter present in the body needs its header; a header value
 * is literal unless wrapped as `=?base64?…?=`, whose content must be strict Base64.
 */
export function checkParamHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  declared: readonly ParamHeader[],
  args: unknown,
): void {
  const expected = paramHeaderValues(declared, args);
  for (const { header } of declared) {
    const raw = headers[header];
    const sent = Array.isArray(raw) ? raw[0] : raw;
    const want = expected[header];
    if (want === undefined) continue;
    if (sent === undefined) mismatch(`the ${header} header is missing for a value in the body`);
    const decoded = decodeStrict(sent);
    if (decoded === undefined) mismatch(`the ${header} header is not valid Base64`);
    if (decoded !== decodeStrict(want)) mismatch(`the ${header} header does not match the body`);
  }
}

/** A header value as text: literal, or the content of a well-formed Base64 sentinel. */
function decodeStrict(value: string): string | undefined {
  const match = SENTINEL.exec(value);
  if (!match) return value;
  const content = match[1] ?? '';
  if (content.length % 4 !== 0 || !BASE64.test(content)) return undefined;
  return Buffer.from(content, 'base64').toString('utf8');
}

function mismatch(detail: string): never {
  throw new ProxyError('header_mismatch', `Header mismatch: ${detail}.`);
}

/** What the proxy has learnt of each upstream's tools, bounded in targets and tools. */
export class ParamHeaderCatalog {
  readonly #targets = new Map<string, Map<string, readonly ParamHeader[]>>();
  /** Targets whose list was fetched lately, each kept for the lookup interval. */
  readonly #lookups: TtlCache<string, true>;

  constructor(options: { readonly now?: () => number } = {}) {
    this.#lookups = new TtlCache({ ttlMs: LOOKUP_INTERVAL_MS, maxEntries: MAX_TARGETS, ...options });
  }

  /** Records the declarations of a `tools/list` result from `target`. */
  learn(target: string, result: unknown): void {
    const tools = (result as { tools?: unknown } | undefined)?.tools;
    if (!Array.isArray(tools)) return;
    let known = this.#targets.get(target);
    if (!known) {
      if (this.#targets.size >= MAX_TARGETS)
        this.#targets.delete(this.#targets.keys().next().value as string);
      known = new Map();
      this.#targets.set(target, known);
    }
    for (const tool of tools) {
      // An upstream's list: entries that are not objects are skipped, not read.
      if (typeof tool !== 'object' || tool === null) continue;
      const name = (tool as { name?: unknown }).name;
      if (typeof name !== 'string' || (known.size >= MAX_TOOLS && !known.has(name))) continue;
      known.set(name, declaredParamHeaders((tool as { inputSchema?: unknown }).inputSchema));
    }
  }

  /**
   * True when `tool` on `target` should be looked up before a call: never seen, and the target's
   * list was not fetched within the last 30 s (so a bogus name cannot make every call list).
   */
  needsLookup(target: string, tool: string): boolean {
    if (this.#targets.get(target)?.has(tool)) return false;
    if (this.#lookups.get(target)) return false;
    this.#lookups.set(target, true);
    return true;
  }

  /** The declarations of `tool` on `target`, if learnt. */
  declared(target: string, tool: string): readonly ParamHeader[] | undefined {
    return this.#targets.get(target)?.get(tool);
  }

  /** The `Mcp-Param-*` headers a call of `tool` on `target` with `args` needs. */
  headersFor(target: string, tool: string, args: unknown): Record<string, string> {
    const declared = this.#targets.get(target)?.get(tool);
    return declared ? paramHeaderValues(declared, args) : {};
  }
}
