/**
 * @module upstream/content-type
 * Reads an upstream's `Content-Type` strictly. A prefix test (`startsWith('application/json')`)
 * takes `application/json+xml`, `application/jsonx` and `application/json, text/html` for JSON,
 * while a browser reads the last two as something else entirely (Fetch's "extract a MIME type"
 * lets the last valid type of a list win) and the first as XML, which runs XHTML script. So a
 * field counts only when it holds exactly one media type (RFC 9110 §8.3.1) whose essence is
 * `application/json` or `text/event-stream`, and whatever is relayed carries that canonical value,
 * never the upstream's own spelling (issue #14.10, review F1).
 */

/** The two media types an MCP server answers with. */
export type McpMediaType = 'application/json' | 'text/event-stream';

/** An MCP media type as read from a `Content-Type` field, with the charset it named if any. */
export interface McpContentType {
  readonly essence: McpMediaType;
  readonly charset?: string;
}

/** What a body that is not one plain MCP media type is relayed as: never rendered, never sniffed. */
export const OPAQUE_CONTENT_TYPE = 'application/octet-stream';

/** RFC 9110 §5.6.2 token. */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** RFC 9110 §5.6.4 quoted-string (obs-text included). */
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})`);
/** One `; name=value` (or an empty `;`, which the grammar allows) at the start of what is left. */
const PARAMETER = new RegExp(`^[\\t ]*;[\\t ]*(?:(${TOKEN})=(${TOKEN}|${QUOTED}))?`);
const PLAIN_JSON: McpContentType = Object.freeze({ essence: 'application/json' });
const PLAIN_EVENT_STREAM: McpContentType = Object.freeze({ essence: 'text/event-stream' });
const MCP_TYPES: ReadonlySet<string> = new Set(['application/json', 'text/event-stream']);

/**
 * The MCP media type a `Content-Type` field declares, or `undefined` when it is absent, repeated,
 * a list, malformed, or any other type. Parameters must be well formed; only `charset` is kept.
 */
export function mcpContentType(field: string | readonly string[] | undefined): McpContentType | undefined {
  // A repeated field is a list to a browser (joined with ", "), whichever one undici shows first.
  const value = Array.isArray(field) ? (field.length === 1 ? field[0] : undefined) : field;
  if (typeof value !== 'string') return undefined;
  // The spellings nearly every server sends, read on every answer: no parsing for them.
  if (value === 'application/json') return PLAIN_JSON;
  if (value === 'text/event-stream') return PLAIN_EVENT_STREAM;
  let rest = value.replace(/^[\t ]+|[\t ]+$/g, '');
  const type = MEDIA_TYPE.exec(rest);
  if (!type) return undefined;
  const essence = `${type[1]}/${type[2]}`.toLowerCase();
  if (!MCP_TYPES.has(essence)) return undefined;
  rest = rest.slice(type[0].length);
  let charset: string | undefined;
  while (rest !== '') {
    const parameter = PARAMETER.exec(rest);
    if (!parameter || parameter[0] === '') return undefined;
    rest = rest.slice(parameter[0].length);
    const [, name, raw] = parameter;
    if (name === undefined || raw === undefined || name.toLowerCase() !== 'charset') continue;
    const unquoted = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    // One charset, and one that is a plain token once unquoted: anything else is not plain.
    if (charset !== undefined || !new RegExp(`^${TOKEN}$`).test(unquoted)) return undefined;
    charset = unquoted.toLowerCase();
  }
  return charset === undefined
    ? { essence: essence as McpMediaType }
    : { essence: essence as McpMediaType, charset };
}

/** The `Content-Type` to relay a body under: the canonical MCP type, else {@link OPAQUE_CONTENT_TYPE}. */
export function relayedContentType(field: string | readonly string[] | undefined): string {
  const type = mcpContentType(field);
  if (!type) return OPAQUE_CONTENT_TYPE;
  return type.charset === undefined ? type.essence : `${type.essence}; charset=${type.charset}`;
}
