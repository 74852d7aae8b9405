/**
 * @module credentials/member-credentials
 * The broker's part in virtual servers (issue 20): a member reached for a principal gets the
 * principal's upstream token from the vault, and a member that needs a sign-in asks for it as a
 * named server would (`upstream_auth_required`), for that member only.
 */
import type { UpstreamTarget } from '../dispatch/connector.ts';
import type { ProxyError } from '../errors.ts';
import type { MemberCredentials } from '../virtual/virtual-servers.ts';
import type { OAuthBroker } from './broker.ts';

/** The broker as virtual servers use it. */
export function memberCredentials(broker: OAuthBroker): MemberCredentials {
  return {
    get enabled() {
      return broker.enabled;
    },
    async supply(principalKey: string, target: UpstreamTarget, signal?: AbortSignal) {
      if (!broker.enabled || target.kind === 'stdio') return target;
      const token = await broker.bearerFor(principalKey, target, signal);
      if (token !== undefined) return { ...target, bearerToken: token };
      if (broker.demands(target))
        throw await broker.required(principalKey, target, undefined, undefined, undefined, signal);
      return target;
    },
    async refused(principalKey: string, target: UpstreamTarget, refusal: ProxyError, signal?: AbortSignal) {
      if (!broker.enabled || target.kind === 'stdio') return refusal;
      const challenge = refusal.headers['www-authenticate'];
      // A server that is no OAuth server keeps its own refusal (the broker's `notOAuth`).
      return broker.required(principalKey, target, challenge, undefined, refusal, signal);
    },
  };
}
