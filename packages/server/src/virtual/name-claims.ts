/**
 * @module virtual/name-claims
 * Which member a name belongs to when a virtual server shows names unprefixed (`prefix: none`,
 * issue 20): read from the members' own lists, since nothing in the name says it. A name two
 * members list cannot be routed, and the configuration cannot know it at load time (members
 * change their lists): it is hidden from both members' lists, named in the first page's
 * `_meta`, and logged once. A virtual server of one member needs none of this: every name is
 * that member's.
 */
import type { Logger } from 'pino';
import type { JsonObject } from '../jsonrpc.ts';
import { TtlCache } from '../ttl-cache.ts';

/** The `_meta` key of a list result naming the names several members list (hidden from all). */
export const AMBIGUOUS_META = 'io.github.mcp-proxy/ambiguous';
/** How long a principal's claims are reused before the members are read again. */
const CLAIMS_TTL_MS = 30_000;
/** Principals whose claims are held at once (the oldest forgotten first). */
const MAX_PRINCIPALS = 10_000;
/** Pages read of one member, and names read over all members, for one reading (bounded work). */
const MAX_PAGES_PER_MEMBER = 20;
const MAX_NAMES = 5_000;
/** A collision is logged once per this long (per virtual server, list, name and members). */
const LOG_ONCE_MS = 3_600_000;

/** Who claims which name: the one member of each name, and the names several claim. */
export interface Claims {
  readonly owners: ReadonlyMap<string, string>;
  readonly ambiguous: ReadonlyMap<string, readonly string[]>;
}

/** A member's list page, or why it has none (member-view.ts reads it). */
export type ClaimPage = { readonly result: JsonObject } | { readonly code: string } | undefined;

/** Where one reading of claims comes from: one request's view of the virtual server. */
export interface ClaimSource {
  /** The virtual server, and the list (`tools/list`, `prompts/list`). */
  readonly name: string;
  readonly list: string;
  readonly principalKey: string;
  /** The members the principal sees, in configured order. */
  readonly members: readonly string[];
  /** A member's page at `cursor`. */
  page(member: string, cursor: string | undefined): Promise<ClaimPage>;
  /** The names on a member's page the principal may see. */
  names(member: string, result: JsonObject): string[];
}

/** The claims of every principal's view, reused for a short while, forgotten on a list change. */
export class NameClaims {
  /** By principal, then by virtual server, list and visible members: each reading, shared. */
  readonly #byPrincipal = new TtlCache<string, Map<string, Promise<Claims>>>({
    ttlMs: CLAIMS_TTL_MS,
    maxEntries: MAX_PRINCIPALS,
  });
  readonly #logged = new TtlCache<string, true>({ ttlMs: LOG_ONCE_MS, maxEntries: MAX_PRINCIPALS });
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** The claims of `source`'s view: read from its members unless a recent reading holds them. */
  of(source: ClaimSource): Promise<Claims> {
    let held = this.#byPrincipal.get(source.principalKey);
    if (held === undefined) {
      held = new Map();
      this.#byPrincipal.set(source.principalKey, held);
    }
    const key = JSON.stringify([source.name, source.list, source.members]);
    const known = held.get(key);
    if (known !== undefined) return known;
    const reading = this.#read(source).then(({ claims, complete }) => {
      // A member that could not be read may claim any name: read again next time.
      if (!complete) held.delete(key);
      return claims;
    });
    held.set(key, reading);
    return reading;
  }

  /** Forgets a principal's claims: one of the members it reaches changed a list. */
  forget(principalKey: string): void {
    this.#byPrincipal.delete(principalKey);
  }

  async #read(source: ClaimSource): Promise<{ claims: Claims; complete: boolean }> {
    const claimants = new Map<string, string[]>();
    let complete = true;
    let read = 0;
    // One member after the other: a reading is rare (once per principal and TTL), and each
    // member page is bounded by the list deadline the source applies.
    for (const member of source.members) {
      let cursor: string | undefined;
      for (let page = 0; page < MAX_PAGES_PER_MEMBER && read < MAX_NAMES; page++) {
        const answer = await source.page(member, cursor);
        if (answer === undefined) break;
        if ('code' in answer) {
          complete = false;
          break;
        }
        for (const name of source.names(member, answer.result).slice(0, MAX_NAMES - read)) {
          read++;
          const members = claimants.get(name) ?? [];
          if (!members.includes(member)) members.push(member);
          claimants.set(name, members);
        }
        cursor = typeof answer.result.nextCursor === 'string' ? answer.result.nextCursor : undefined;
        if (cursor === undefined) break;
      }
    }
    const owners = new Map<string, string>();
    const ambiguous = new Map<string, readonly string[]>();
    for (const [name, members] of claimants) {
      if (members.length === 1) owners.set(name, members[0] as string);
      else {
        ambiguous.set(name, members);
        this.#logOnce(source, name, members);
      }
    }
    return { claims: { owners, ambiguous }, complete };
  }

  #logOnce(source: ClaimSource, name: string, members: readonly string[]): void {
    const key = JSON.stringify([source.name, source.list, name, members]);
    if (this.#logged.get(key) !== undefined) return;
    this.#logged.set(key, true);
    this.#logger.warn(
      { virtualServer: source.name, list: source.list, name: name.slice(0, 256), members },
      'virtual server name listed by several members: hidden from all of them',
    );
  }
}
