/**
 * @module eras/param-headers
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
/**
 * Bounds on what an upstream's `tools/list` may make the proxy keep (issue 14 review, F3): the
 * catalog is shared by every caller, and a hostile answer declared 150k headers that stayed in
 * the heap. A real tool mirrors a handful of parameters, shallow, with short names.
 */
const MAX_HEADERS_PER_TOOL = 32;
const MAX_HEADER_NAME_CHARS = 64;
/** Nesting of `properties` walked for declarations (a path longer than this is not mirrored). */
const MAX_PATH_DEPTH = 8;
/** Properties visited per schema: walking stops there, whatever it found. */
const MAX_VISITED_PROPERTIES = 4_096;
/** Tool names and property keys longer than this are not kept (MCP names are ≤ 128). */
const MAX_NAME_CHARS = 256;
const MAX_TARGETS = 1_000;
const MAX_TOOLS = 1_000;
/** What all targets' entries may cost together (UTF-16 length of kept strings plus overhead); least recently used targets go first. */
const MAX_CATALOG_BYTES = 4 * 1_048_576;
/** Bookkeeping per kept tool or declaration, on top of its strings. */
const ENTRY_OVERHEAD_BYTES = 64;
const LOOKUP_INTERVAL_MS = 30_000;

/** The `x-mcp-header` declarations of one input schema (only statically reachable ones), bounded. */
export function declaredParamHeaders(schema: unknown): ParamHeader[] {
  const found: ParamHeader[] = [];
  let visited = 0;
  // Iterative, depth-first in document order: an upstream's nesting must not reach the stack.
  const stack: Array<{ node: unknown; path: readonly string[] }> = [{ node: schema, path: [] }];
  while (stack.length > 0 && found.length < MAX_HEADERS_PER_TOOL) {
    const { node, path } = stack.pop() as { node: unknown; path: readonly string[] };
    const properties = (node as { properties?: unknown } | null | undefined)?.properties;
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) continue;
    const children: Array<{ node: unknown; path: readonly string[] }> = [];
    for (const [key, property] of Object.entries(properties as Record<string, unknown>)) {
      if (++visited > MAX_VISITED_PROPERTIES) return found;
      if (key.length > MAX_NAME_CHARS) continue;
      const childPath = [...path, key];
      const name = (property as { 'x-mcp-header'?: unknown } | null)?.['x-mcp-header'];
      if (typeof name === 'string' && name.length <= MAX_HEADER_NAME_CHARS && TOKEN.test(name)) {
        found.push({ header: `mcp-param-${name.toLowerCase()}`, path: childPath });
        if (found.length >= MAX_HEADERS_PER_TOOL) return found;
      }
      if (childPath.length < MAX_PATH_DEPTH) children.push({ node: property, path: childPath });
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as (typeof children)[number]);
  }
  return found;
}

/**
 * The catalog's key for a target: a URL by origin and path (a query string must not make a new
 * entry per request), anything else (a configured server's name) as it is.
 */
function catalogKey(target: string): string {
  const url = URL.parse(target);
  return url && url.origin !== 'null' ? `${url.origin}${url.pathname}` : target;
}

/** What one tool's entry costs, roughly, in bytes. */
function entryCost(tool: string, declared: readonly ParamHeader[]): number {
  let cost = ENTRY_OVERHEAD_BYTES + tool.length * 2;
  for (const { header, path } of declared) {
    cost += ENTRY_OVERHEAD_BYTES + header.length * 2;
    for (const key of path) cost += 16 + key.length * 2;
  }
  return cost;
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

/** One target's tools and what they cost. */
interface TargetEntry {
  readonly tools: Map<string, readonly ParamHeader[]>;
  bytes: number;
}

/**
 * What the proxy has learnt of each upstream's tools, bounded in targets, tools, declarations
 * and bytes: the least recently used targets are forgotten first (a forgotten tool is looked up
 * again when called).
 */
export class ParamHeaderCatalog {
  /** In least-recently-used order (a use moves a target to the end). */
  readonly #targets = new Map<string, TargetEntry>();
  /** Targets whose list was fetched lately, each kept for the lookup interval. */
  readonly #lookups: TtlCache<string, true>;
  readonly #maxBytes: number;
  #bytes = 0;

  /**
   * @param options.maxBytes what all entries may cost together (tests lower it);
   * `now` the clock of the lookup interval.
   */
  constructor(options: { readonly maxBytes?: number; readonly now?: () => number } = {}) {
    this.#maxBytes = options.maxBytes ?? MAX_CATALOG_BYTES;
    this.#lookups = new TtlCache({ ttlMs: LOOKUP_INTERVAL_MS, maxEntries: MAX_TARGETS, now: options.now });
  }

  /** Roughly what the catalog holds, in bytes (for tests and metrics). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records the declarations of a `tools/list` result from `target`. */
  learn(target: string, result: unknown): void {
    const tools = (result as { tools?: unknown } | undefined)?.tools;
    if (!Array.isArray(tools)) return;
    const key = catalogKey(target);
    let known = this.#targets.get(key);
    if (known) this.#targets.delete(key);
    else known = { tools: new Map(), bytes: 0 };
    this.#targets.set(key, known);
    // Each target may use at most a quarter of the budget, so one upstream cannot evict all others.
    const targetBudget = this.#maxBytes / 4;
    for (const tool of tools) {
      // An upstream's list: entries that are not objects are skipped, not read.
      if (typeof tool !== 'object' || tool === null) continue;
      const name = (tool as { name?: unknown }).name;
      if (typeof name !== 'string' || name.length > MAX_NAME_CHARS) continue;
      const previous = known.tools.get(name);
      if (previous === undefined && known.tools.size >= MAX_TOOLS) continue;
      const declared = declaredParamHeaders((tool as { inputSchema?: unknown }).inputSchema);
      const cost = entryCost(name, declared);
      const previousCost = previous === undefined ? 0 : entryCost(name, previous);
      if (known.bytes - previousCost + cost > targetBudget) continue;
      known.tools.set(name, declared);
      known.bytes += cost - previousCost;
      this.#bytes += cost - previousCost;
    }
    this.#evict(key);
  }

  /** Forgets least recently used targets (never `keep`) until within the bounds. */
  #evict(keep: string): void {
    for (const [key, entry] of this.#targets) {
      if (this.#bytes <= this.#maxBytes && this.#targets.size <= MAX_TARGETS) return;
      if (key === keep) continue;
      this.#targets.delete(key);
      this.#bytes -= entry.bytes;
    }
  }

  /**
   * True when `tool` on `target` should be looked up before a call: never seen, and the target's
   * list was not fetched within the last 30 s (so a bogus name cannot make every call list).
   */
  needsLookup(target: string, tool: string): boolean {
    const key = catalogKey(target);
    if (this.#targets.get(key)?.tools.has(tool)) return false;
    if (this.#lookups.get(key)) return false;
    this.#lookups.set(key, true);
    return true;
  }

  /** The declarations of `tool` on `target`, if learnt. */
  declared(target: string, tool: string): readonly ParamHeader[] | undefined {
    const key = catalogKey(target);
    const entry = this.#targets.get(key);
    if (!entry) return undefined;
    // A use keeps the target from eviction longest.
    this.#targets.delete(key);
    this.#targets.set(key, entry);
    return entry.tools.get(tool);
  }

  /** The `Mcp-Param-*` headers a call of `tool` on `target` with `args` needs. */
  headersFor(target: string, tool: string, args: unknown): Record<string, string> {
    const declared = this.declared(target, tool);
    return declared ? paramHeaderValues(declared, args) : {};
  }
}
