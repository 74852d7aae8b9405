/**
 * @module virtual/member-naming
 * How one request's view of a virtual server names its members' entries, and the way back to
 * the member: a tool or prompt is prefixed with its member's name (`prefix: member`) or shown as
 * the member gives it (`prefix: none`: then it is the one member's, or the one whose list has it,
 * name-claims.ts); a resource URI as its {@link MemberMapping} says (`mcpp://<member>/<uri>`,
 * reversibly, unless the virtual server is its one member with `prefix: none`).
 */
import type { VirtualServerSettings } from '../config/virtual-servers.ts';
import type { JsonObject, RequestId } from '../jsonrpc.ts';
import { type Catalog, TOOLS } from './catalogs.ts';
import { type MemberMapping, type MemberName, memberMapping, memberName, prefixed } from './member-names.ts';
import { AMBIGUOUS_META, type ClaimPage, type Claims, type NameClaims } from './name-claims.ts';

/** What naming needs of one request's view (member-view.ts). */
export interface NamingContext {
  readonly settings: VirtualServerSettings;
  /** The virtual server's name, and the principal asking. */
  readonly name: string;
  readonly principalKey: string;
  /** The members the principal sees, in configured order. */
  readonly members: readonly string[];
  readonly claims: NameClaims;
  /** A member's page of a list, asked under the client's request id. */
  page(member: string, cursor: string | undefined, catalog: Catalog, id: RequestId): Promise<ClaimPage>;
}

/** Names one view's entries and finds the member a client's name or URI belongs to. */
export class MemberNaming {
  readonly #context: NamingContext;
  readonly #mapping: MemberMapping;

  constructor(context: NamingContext) {
    this.#context = context;
    this.#mapping = memberMapping(context.settings);
  }

  /** How URIs (and loggers) are shown: in lists, and in what members answer (client-view.ts). */
  get mapping(): MemberMapping {
    return this.#mapping;
  }

  /**
   * The entries of a member's page the caller may see, named as the client sees them (a name
   * `claims` finds on several members is left out); entries of any other shape dropped.
   */
  visible(member: string, entries: unknown, catalog: Catalog, claims?: Claims): JsonObject[] {
    if (!Array.isArray(entries)) return [];
    const { settings } = this.#context;
    const allow = catalog === TOOLS ? settings.tools : undefined;
    const visible: JsonObject[] = [];
    for (const entry of entries) {
      if (typeof entry !== 'object' || entry === null) continue;
      const own = (entry as JsonObject)[catalog.key];
      if (typeof own !== 'string' || claims?.ambiguous.has(own)) continue;
      const exposed =
        catalog.key !== 'name'
          ? this.#mapping.uri(member, own)
          : settings.prefix === 'none'
            ? own
            : prefixed(member, own, settings.separator);
      if (allow === undefined || allow.includes(exposed))
        visible.push({ ...(entry as JsonObject), [catalog.key]: exposed });
    }
    return visible;
  }

  /** The member a client's name (or URI, for resources) belongs to, and its own name for it. */
  async target(named: string, catalog: Catalog, id: RequestId): Promise<MemberName | undefined> {
    const { settings, members } = this.#context;
    if (catalog.key !== 'name') return this.#mapping.owner(named, members);
    if (settings.prefix !== 'none') return memberName(named, members, settings.separator);
    const only = members.length === 1 ? members[0] : undefined;
    if (only !== undefined) return { member: only, name: named };
    const member = (await this.claimsOf(catalog, id))?.owners.get(named);
    return member === undefined ? undefined : { member, name: named };
  }

  /** Who claims which unprefixed name, when that takes reading (`prefix: none`, several members). */
  claimsOf(catalog: Catalog, id: RequestId): Promise<Claims | undefined> {
    const context = this.#context;
    if (context.settings.prefix !== 'none' || catalog.key !== 'name' || context.members.length < 2)
      return Promise.resolve(undefined);
    return context.claims.of({
      name: context.name,
      list: catalog.method,
      principalKey: context.principalKey,
      members: context.members,
      page: (member, cursor) => context.page(member, cursor, catalog, id),
      names: (member, result) =>
        this.visible(member, result[catalog.field], catalog).map((entry) => entry[catalog.key] as string),
    });
  }
}

/** A list answer's `_meta` entry naming the names several members list, when there are any. */
export function ambiguousMeta(ambiguous: ReadonlyMap<string, readonly string[]> | undefined): JsonObject {
  if (ambiguous === undefined || ambiguous.size === 0) return {};
  return { [AMBIGUOUS_META]: [...ambiguous].map(([name, servers]) => ({ name, servers })) };
}
