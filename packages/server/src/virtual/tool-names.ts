/**
 * @module virtual/tool-names
 * How a virtual server's names and cursors map to its members': a tool is listed as
 * `<member><separator><tool>`, and a list cursor of the proxy's own says which member's page
 * comes next and that member's cursor for it.
 */

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
 * claims it. The load-time check (config/virtual-servers.ts) makes the member unique.
 */
export function memberName(
  prefixedName: string,
  members: readonly string[],
  separator: string,
): MemberName | undefined {
  for (const member of members) {
    const head = member + separator;
    if (prefixedName.length > head.length && prefixedName.startsWith(head))
      return { member, name: prefixedName.slice(head.length) };
  }
  return undefined;
}

/** Where a merged list goes on: the member's position and its own cursor, if it gave one. */
export interface ListPosition {
  readonly member: number;
  readonly cursor: string | undefined;
}

const CURSOR_PREFIX = 'mcpp-v1.';

/** The cursor a client gets for `position`. Opaque to it, as MCP cursors are. */
export function encodeCursor(position: ListPosition): string {
  const payload = JSON.stringify(
    position.cursor === undefined ? [position.member] : [position.member, position.cursor],
  );
  return CURSOR_PREFIX + Buffer.from(payload).toString('base64url');
}

/**
 * The position a client's cursor names among `memberCount` members; undefined when it is not
 * one this proxy issued (the caller then gets invalid params, as the spec asks).
 */
export function decodeCursor(cursor: unknown, memberCount: number): ListPosition | undefined {
  if (typeof cursor !== 'string' || !cursor.startsWith(CURSOR_PREFIX)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor.slice(CURSOR_PREFIX.length), 'base64url').toString());
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
