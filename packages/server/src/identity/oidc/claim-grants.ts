/**
 * @module identity/oidc/claim-grants
 * Turns an OIDC token's claims into {@link Grants} with the operator's mapping, e.g.
 * `{ groups: { staff: { servers: ['github'] } } }`: a claim (a top-level name, or a dotted path
 * such as `realm_access.roles`) whose value is, or is a list that contains, a key of the mapping
 * earns that key's grants. Several matches add up: a field any match leaves open stays open,
 * restricted lists are joined, `admin` is true if any match says so, and the first `rateClass`
 * in the mapping's order wins.
 */
import type { JWTPayload } from 'jose';
import type { Grants } from '../principal.ts';

/** The operator's mapping: claim → claim value → grants. */
export type ClaimGrantMap = Readonly<Record<string, Readonly<Record<string, Grants>>>>;

/** What a token earns: its grants, or `undefined` when a mapping exists and nothing in it matched. */
export function grantsFromClaims(
  claims: JWTPayload,
  mapping: ClaimGrantMap | undefined,
  fallback: Grants | undefined,
): Grants | undefined {
  if (mapping === undefined || Object.keys(mapping).length === 0) return fallback ?? {};
  const matched: Grants[] = [];
  for (const [claim, byValue] of Object.entries(mapping)) {
    const values = claimValues(claims, claim);
    for (const [value, grants] of Object.entries(byValue)) {
      if (values.includes(value)) matched.push(grants);
    }
  }
  if (matched.length === 0) return fallback;
  return combine(matched);
}

/** The string values of a claim: itself, or the strings of a list; numbers and booleans as text. */
function claimValues(claims: JWTPayload, name: string): string[] {
  let value: unknown = Object.hasOwn(claims, name) ? claims[name] : undefined;
  if (value === undefined && name.includes('.')) {
    value = claims;
    for (const part of name.split('.')) {
      value =
        typeof value === 'object' && value !== null && Object.hasOwn(value, part)
          ? (value as Record<string, unknown>)[part]
          : undefined;
    }
  }
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v) => ['string', 'number', 'boolean'].includes(typeof v)).map(String);
}

function combine(matched: readonly Grants[]): Grants {
  const join = (field: 'servers' | 'urls' | 'tools'): readonly string[] | undefined => {
    // One match that leaves the field open opens it: restrictions add up only among restrictions.
    if (matched.some((grants) => grants[field] === undefined)) return undefined;
    return [...new Set(matched.flatMap((grants) => grants[field] ?? []))];
  };
  const rateClass = matched.find((grants) => grants.rateClass !== undefined)?.rateClass;
  const admin = matched.some((grants) => grants.admin === true);
  return {
    servers: join('servers'),
    urls: join('urls'),
    tools: join('tools'),
    ...(rateClass === undefined ? {} : { rateClass }),
    ...(admin ? { admin } : {}),
  };
}
