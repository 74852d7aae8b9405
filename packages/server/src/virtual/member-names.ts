/**
 * @module virtual/member-names
 * How a virtual server's names, URIs and cursors map to its members': a tool or prompt is
 * listed as `<member><separator><name>`, a resource as `mcpp://<member>/<uri>` (a name as
 * the member gives it with `prefix: none`, a URI too when that member is the only one), and a list cursor of the proxy's own
 * says which member's page comes next and that member's cursor for it.
 */
import { timingSafeEqual } from 'node:crypto';

/** A prefixed name taken apart: which member, and the member's own name for it. */
export interface MemberName {
  readonly member: string;
  readonly name: string;
}

/** The name a client sees for a member's tool. */
export function prefixed(member: string, name: string, separator: string): string {
  return `${member}${separator}${name}`;
}

/**
 * The member a prefixed name belongs to, and its name there; undefined when none of `members`
 * claims it, or when several do. The load-time check (config/virtual-servers.ts) makes the member unique.
 */
export function memberName(
  prefixedName: string,
  members: readonly string[],
  separator: string,
): MemberName | undefined {
  let found: MemberName | undefined;
  for (const member of members) {
    const head = member + separator;
    if (prefixedName.length > head.length && prefixedName.startsWith(head)) {
      // Two members claiming it: no guess (the load check should have refused them).
      if (found !== undefined) return undefined;
      found = { member, name: prefixedName.slice(head.length) };
    }
  }
  return found;
}

/**
 * The scheme of a member's resource URI as a client sees it: `mcpp://<member>/<the member's
 * URI, as it is>`. The member's URI is appended unencoded, so a URI template stays a template
 * (`mcpp://docs/file:///{path}` expands to what maps back to `file:///…`), and member names are
 * valid host names (letters, digits, `_ . -`).
 */
const URI_PREFIX = 'mcpp://';

/**
 * What a virtual server adds to what its members name besides tools and prompts: a resource
 * URI (and template) shown as `mcpp://<member>/<uri>`, so several members' URIs never clash and
 * a read finds its member; a log message's logger headed by the member's name. With `prefix:
 * none` and ONE configured member it adds nothing: there is nothing to route nor tell apart, so
 * the virtual server names everything as the member does (issue 20: the conformance suite reads
 * fixed URIs). Judged on the configured members, not on those a principal sees, so every
 * principal (and a link one gives another) names a resource alike.
 */
export interface MemberMapping {
  /** The URI a client sees for a member's resource (or URI template). */
  uri(member: string, uri: string): string;
  /** The member of `members` a client's URI belongs to, and the member's own URI; undefined when none claims it. */
  owner(uri: string, members: readonly string[]): MemberName | undefined;
  /** The logger a client sees for a member's log message that named `logger` (or none). */
  logger(member: string, logger: unknown): unknown;
}

/** How the virtual server configured with `settings` maps its members' URIs and loggers: the one place deciding. */
export function memberMapping(settings: {
  readonly servers: readonly string[];
  readonly prefix?: 'member' | 'none' | undefined;
}): MemberMapping {
  const [only, ...others] = settings.servers;
  if (settings.prefix === 'none' && only !== undefined && others.length === 0) return asIs(only);
  return MAPPED;
}

const MAPPED: MemberMapping = {
  uri: (member, uri) => `${URI_PREFIX}${member}/${uri}`,
  owner(uri, members) {
    if (!uri.startsWith(URI_PREFIX)) return undefined;
    const rest = uri.slice(URI_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return undefined;
    const member = rest.slice(0, slash);
    const name = rest.slice(slash + 1);
    return members.includes(member) && name !== '' ? { member, name } : undefined;
  },
  logger: (member, logger) => (typeof logger === 'string' ? `${member}/${logger}` : member),
};

/** The mapping of a virtual server that is its one member, as directly. */
function asIs(only: string): MemberMapping {
  return {
    uri: (_member, uri) => uri,
    // A principal who does not see the member reaches none of its URIs.
    owner: (uri, members) => (members.includes(only) && uri !== '' ? { member: only, name: uri } : undefined),
    logger: (_member, logger) => logger,
  };
}

/** Where a merged list goes on: the member's position and its own cursor, if it gave one. */
export interface ListPosition {
  readonly member: number;
  readonly cursor: string | undefined;
}

const CURSOR_PREFIX = 'mcpp-v1.';

/**
 * The cursor a client gets for `position`, followed by `tag` of it (an HMAC binding it to its
 * caller: member-view.ts). Opaque to it, as MCP cursors are.
 */
export function encodeCursor(position: ListPosition, tag: (payload: string) => string): string {
  const payload = Buffer.from(
    JSON.stringify(position.cursor === undefined ? [position.member] : [position.member, position.cursor]),
  ).toString('base64url');
  return `${CURSOR_PREFIX}${payload}.${tag(payload)}`;
}

/**
 * The position a client's cursor names among `memberCount` members; undefined when it is not
 * one this proxy issued to this caller (its `tag` does not match) (the caller then gets invalid params, as the spec asks).
 */
export function decodeCursor(
  cursor: unknown,
  memberCount: number,
  tag: (payload: string) => string,
): ListPosition | undefined {
  if (typeof cursor !== 'string' || !cursor.startsWith(CURSOR_PREFIX)) return undefined;
  const dot = cursor.lastIndexOf('.');
  const payload = cursor.slice(CURSOR_PREFIX.length, dot);
  const given = Buffer.from(cursor.slice(dot + 1));
  const expected = Buffer.from(tag(payload));
  if (dot < CURSOR_PREFIX.length || given.length !== expected.length || !timingSafeEqual(given, expected))
    return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString());
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length < 1 || parsed.length > 2) return undefined;
  const [member, memberCursor] = parsed as unknown[];
  if (typeof member !== 'number' || !Number.isInteger(member) || member < 0 || member >= memberCount)
    return undefined;
  if (memberCursor !== undefined && typeof memberCursor !== 'string') return undefined;
  return { member, cursor: memberCursor };
}
