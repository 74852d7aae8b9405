/**
 * @module credentials/member-credentials
 * The broker's part in virtual servers (issue 20): a member reached for a principal gets the
 * principal's upstream token from the vault, and a member that needs a sign-in asks for it as a
 * named server would (`upstream_auth_required`), for that member only; a list only looks in the
 * vault and starts no sign-in (review 6, VIRTUAL-1).
 */
import type { UpstreamTarget } from '../dispatch/connector.ts';
import { ProxyError } from '../errors.ts';
import type { MemberCredentials } from '../virtual/virtual-servers.ts';
import type { OAuthBroker } from './broker.ts';

/** The broker as virtual servers use it. */
export function memberCredentials(broker: OAuthBroker): MemberCredentials {
  return {
    get enabled() {
      return broker.enabled;
    },
    async supply(principalKey: string, target: UpstreamTarget, signal?: AbortSignal, offer = true) {
      if (!broker.enabled || target.kind === 'stdio') return target;
      const token = await broker.bearerFor(principalKey, target, signal);
      if (token !== undefined) return { ...target, bearerToken: token };
      if (!broker.demands(target)) return target;
      throw offer
        ? await broker.required(principalKey, target, undefined, undefined, undefined, signal)
        : signInNeeded(target);
    },
    async refused(
      principalKey: string,
      target: UpstreamTarget,
      refusal: ProxyError,
      signal?: AbortSignal,
      offer = true,
    ) {
      if (!broker.enabled || target.kind === 'stdio') return refusal;
      if (!offer) return signInNeeded(target);
      const challenge = refusal.headers['www-authenticate'];
      // A server that is no OAuth server keeps its own refusal (the broker's `notOAuth`).
      return broker.required(principalKey, target, challenge, undefined, refusal, signal);
    },
  };
}

/**
 * A member that needs a sign-in, said without starting one (a list's look): every offer counts
 * against the principal's cap, so only a call, get or read, which the user means, starts one.
 */
function signInNeeded(target: UpstreamTarget): ProxyError {
  return new ProxyError(
    'upstream_auth_required',
    'The MCP server needs you to sign in: call one of its tools to be given the sign-in link.',
    { data: { server: target.name ?? null } },
  );
}
