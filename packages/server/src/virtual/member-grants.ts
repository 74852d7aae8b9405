/**
 * @module virtual/member-grants
 * What a principal's grants let it have of a virtual server's members (issue 20,
 * docs/virtual-servers.md "Per-principal view"): which members it sees, and the grants each
 * member is reached with. The rules themselves are policy/grants.ts's.
 */
import { permitsTarget, restrictsMembers, type TargetGrants } from '../policy/grants.ts';
import { memberName } from './member-names.ts';

/**
 * The members a principal sees: every one when its grant does not restrict servers or names
 * virtual servers only; when it also names any other server, only the members it names
 * (`servers: [workspace, github]` sees GitHub's tools in `workspace`), none when it names no
 * current member. Whether the grant restricts is read from the grant alone, never from who the
 * members are now: a reload that drops the one member a grant named must not widen it to all.
 */
export function visibleMembers(
  members: readonly string[],
  grants: TargetGrants | undefined,
  isVirtual: (name: string) => boolean,
): readonly string[] {
  return restrictsMembers(grants?.servers, isVirtual)
    ? members.filter((member) => permitsTarget(grants, { server: member }))
    : members;
}

/**
 * The members a principal with `grants` sees on the virtual server `name` configured as
 * `settings` (none when the virtual server is gone or its grants do not reach it): what its
 * streams take, judged again after each reload.
 */
export function membersSeen(
  name: string,
  settings: { readonly servers: readonly string[] } | undefined,
  grants: TargetGrants | undefined,
  isVirtual: (name: string) => boolean,
): readonly string[] {
  if (settings === undefined || !permitsTarget(grants, { server: name })) return [];
  return visibleMembers(settings.servers, grants, isVirtual);
}

/**
 * The grants `member` is reached with: the principal's, the member named (a visible member is
 * reached through the virtual server, whether or not the grant names it), and its tool grant
 * read in the member's own names. A grant may name a tool as the client sees it
 * (`github__create_issue`) or as its server does; a name prefixed with a member's name grants
 * that member's tool only, never a tool another member happens to call `github__create_issue`.
 */
export function memberGrants<G extends TargetGrants>(
  grants: G,
  member: string,
  members: readonly string[],
  separator: string,
): G {
  const tools = grants.tools?.flatMap((tool) => {
    const named = memberName(tool, members, separator);
    if (named === undefined) return [tool];
    return named.member === member ? [named.name] : [];
  });
  return { ...grants, servers: [member], ...(tools === undefined ? {} : { tools }) };
}
