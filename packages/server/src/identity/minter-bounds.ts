/**
 * @module identity/minter-bounds
 * THE decision whether a minted token still stays within the admin that minted it (review10
 * MINT-2, MINT-4, MINT-6): judged when the token is verified, and so again after every reload
 * (which forgets verified tokens and re-verifies what they hold open). A token whose minter is no
 * longer configured, or whose grants now exceed its minter's (narrowed, a rate class renamed, a
 * name that became or stopped being a virtual server), is refused: `401 token_revoked`.
 */
import { ProxyError } from '../errors.ts';
import { describeExcess, grantExcess } from '../policy/grant-within.ts';
import { CLI_MINTER } from './mint-records.ts';
import { minterId } from './minted-tokens.ts';
import type { Grants, Principal } from './principal.ts';

/** What the judgement reads of the configuration in force. */
export interface MinterBounds {
  /** The grants of the admin token whose minter id ({@link minterId}) is `minter`, now. */
  adminGrants(minter: string): Grants | undefined;
  /** Whether `name` is a virtual server now. */
  isVirtual(name: string): boolean;
}

/** `npm run token`'s minter: the operator, limited by nothing. */
const CLI_MINTER_ID = minterId(CLI_MINTER);

/** The grants the minter `minter` holds now; undefined once no admin token stands for it. */
export function minterGrants(minter: string, bounds: MinterBounds): Grants | undefined {
  return minter === CLI_MINTER_ID ? {} : bounds.adminGrants(minter);
}

/** The refusal of a minted `principal` whose minter no longer grants what it carries, else undefined. */
export function beyondMinter(principal: Principal, bounds: MinterBounds): ProxyError | undefined {
  if (principal.auth !== 'minted') return undefined;
  const held = principal.minter === undefined ? undefined : minterGrants(principal.minter, bounds);
  if (held === undefined)
    return new ProxyError(
      'token_revoked',
      'The admin token that minted this token is no longer configured: get a new one from the app that issued it.',
    );
  const excess = grantExcess(principal.grants, held, (name) => bounds.isVirtual(name));
  if (excess === undefined) return undefined;
  return new ProxyError(
    'token_revoked',
    `The grants of the admin token that minted this token changed, and it now exceeds them (${describeExcess(excess, 'that admin token')}): get a new one from the app that issued it.`,
  );
}
