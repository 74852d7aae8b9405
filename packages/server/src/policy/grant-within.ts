/**
 * @module policy/grant-within
 * THE decision whether one grant is within another (review of issue 17): a credential that hands
 * on grants (an admin token minting one, `POST /auth/tokens`) never hands on more than it holds,
 * in any dimension: servers (virtual servers and the members they show included), raw URL
 * patterns, tools, rate class, admin.
 */
import { restrictsMembers, type TargetGrants } from './grants.ts';
import { patternWithin, withinCost } from './url-pattern.ts';

/** Every dimension of a grant (identity/principal.ts `Grants`, declared structurally here). */
export interface HandedGrants extends TargetGrants {
  readonly rateClass?: string | undefined;
  readonly admin?: boolean | undefined;
}

/** Where a grant exceeds another, and how. */
export type GrantExcess =
  /** Names a server, URL pattern or tool beyond the holder's. */
  | { readonly dimension: 'servers' | 'urls' | 'tools'; readonly kind: 'outside'; readonly name: string }
  /** Is not limited in a dimension where the holder is. */
  | { readonly dimension: 'servers' | 'urls' | 'tools'; readonly kind: 'unlimited' }
  /** Names virtual servers only (every member) where the holder sees only the members it names. */
  | { readonly dimension: 'servers'; readonly kind: 'members' }
  /** Reaches raw URLs where the holder reaches none (it is limited to servers). */
  | { readonly dimension: 'urls'; readonly kind: 'none' }
  /** Names URL patterns too many or long to compare with the holder's ({@link MAX_URL_WORK}). */
  | { readonly dimension: 'urls'; readonly kind: 'costly' }
  /** Another rate class than the holder's, or admin where the holder is not. */
  | { readonly dimension: 'rateClass' | 'admin'; readonly kind: 'other' };

/**
 * The most work (pattern characters compared, summed over the pairs) judging URL patterns may
 * take: a few tens of milliseconds. Neither the holder's list nor (at verification) the token's
 * is otherwise bounded, and each pair costs the product of its lengths (review10 MINT-3).
 */
export const MAX_URL_WORK = 4_000_000;

/**
 * Where `inner` reaches, sees or may do something `outer` does not: `undefined` when every
 * target, tool and right of `inner` is one of `outer`'s. Judged from the grants alone, as
 * policy/grants.ts applies them (so a reload changes neither side's meaning). URL patterns are
 * compared conservatively: a pattern is within another when the other matches every URL it can.
 */
export function grantExcess(
  inner: HandedGrants,
  outer: HandedGrants,
  isVirtual: (name: string) => boolean,
): GrantExcess | undefined {
  return serversExcess(inner, outer, isVirtual) ?? urlsExcess(inner, outer) ?? otherExcess(inner, outer);
}

function serversExcess(
  inner: HandedGrants,
  outer: HandedGrants,
  isVirtual: (name: string) => boolean,
): GrantExcess | undefined {
  const held = outer.servers;
  if (held === undefined) return undefined;
  const asked = inner.servers;
  if (asked === undefined) return { dimension: 'servers', kind: 'unlimited' };
  const outside = asked.find((name) => !held.includes(name));
  if (outside !== undefined) return { dimension: 'servers', kind: 'outside', name: outside };
  // A grant naming virtual servers only sees every member through them (virtual/member-grants.ts).
  if (asked.some(isVirtual) && restrictsMembers(held, isVirtual) && !restrictsMembers(asked, isVirtual))
    return { dimension: 'servers', kind: 'members' };
  return undefined;
}

/** The raw URLs a grant reaches (policy/grants.ts `permitsTarget`): all, or those its patterns match. */
function urlReach(grants: TargetGrants): readonly string[] | 'all' {
  if (grants.urls !== undefined) return grants.urls;
  return grants.servers === undefined ? 'all' : [];
}

function urlsExcess(inner: HandedGrants, outer: HandedGrants): GrantExcess | undefined {
  const held = urlReach(outer);
  if (held === 'all') return undefined;
  const asked = urlReach(inner);
  if (held.length === 0 && (asked === 'all' || asked.length > 0)) return { dimension: 'urls', kind: 'none' };
  if (asked === 'all') return { dimension: 'urls', kind: 'unlimited' };
  let work = 0;
  for (const pattern of asked) {
    // One of the holder's own (a field left out takes the holder's): within at no comparing.
    if (held.includes(pattern)) continue;
    const within = held.some((mine) => {
      work += withinCost(pattern, mine);
      return work <= MAX_URL_WORK && patternWithin(pattern, mine);
    });
    if (work > MAX_URL_WORK) return { dimension: 'urls', kind: 'costly' };
    if (!within) return { dimension: 'urls', kind: 'outside', name: pattern };
  }
  return undefined;
}

function otherExcess(inner: HandedGrants, outer: HandedGrants): GrantExcess | undefined {
  const held = outer.tools;
  if (held !== undefined) {
    if (inner.tools === undefined) return { dimension: 'tools', kind: 'unlimited' };
    // By name: a name that means one member's tool on a virtual server (`github__x`) is still
    // another name than `x`, so a subset of names is never a wider view (member-grants.ts).
    const outside = inner.tools.find((tool) => !held.includes(tool));
    if (outside !== undefined) return { dimension: 'tools', kind: 'outside', name: outside };
  }
  // Rate classes are not ordered (each sets its own limits): within means the same one.
  if (inner.rateClass !== outer.rateClass) return { dimension: 'rateClass', kind: 'other' };
  if (inner.admin === true && outer.admin !== true) return { dimension: 'admin', kind: 'other' };
  return undefined;
}

/** The message for a refused hand-on: the dimension, and what to name instead. `holder`: "the admin token". */
export function describeExcess(excess: GrantExcess, holder: string): string {
  const { dimension } = excess;
  switch (excess.kind) {
    case 'outside':
      return dimension === 'urls'
        ? `urls: "${excess.name}" reaches URLs ${holder} may not: name patterns within its own`
        : `${dimension}: "${excess.name}" is not one ${holder} may ${dimension === 'tools' ? 'use' : 'reach'}`;
    case 'unlimited':
      return `${dimension}: ${holder} is limited to some ${dimension === 'urls' ? 'URL patterns' : dimension}: name ${dimension} within its own`;
    case 'members':
      return `servers: ${holder} sees only the members it names of a virtual server: name those members too`;
    case 'none':
      return `urls: ${holder} reaches no raw URL: leave out urls and name servers`;
    case 'costly':
      return `urls: too many or too long patterns to compare with those of ${holder}: name fewer or shorter ones`;
    case 'other':
      return `${dimension}: ${holder} may not hand on another ${dimension === 'admin' ? 'admin right' : 'rate class'}`;
  }
}
