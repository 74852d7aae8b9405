/**
 * @module credentials/member-credentials
 * The broker's part in virtual servers (issue 20): a member reached for a principal gets the
 * principal's upstream token from the vault, and a member that needs a sign-in asks for it as a
 * named server would (`upstream_auth_required`), for that member only; a list only looks in the
 * vault and starts no sign-in (review 6, VIRTUAL-1). The member's session holds the broker's
 * credential ({@link LiveCredential}), so a disconnect ends it (review7 CREDS-1).
 */
import type { UpstreamTarget } from '../dispatch/connector.ts';
import { ProxyError } from '../errors.ts';
import type { MemberCredentials } from '../virtual/member-reach.ts';
import type { OAuthBroker } from './broker.ts';
import { LiveCredential } from './live-credential.ts';

/** The broker as virtual servers use it; `current` is the broker if loaded (else it is off). */
export function memberCredentials(current: () => OAuthBroker | undefined): MemberCredentials {
  return {
    get enabled() {
      return current()?.enabled === true;
    },
    async supply(principalKey: string, target: UpstreamTarget, signal?: AbortSignal, offer = true) {
      const broker = current();
      if (!broker?.enabled || target.kind === 'stdio') return target;
      // The member's session holds the credential, not the token read now: a refresh or a new
      // sign-in reaches it, a disconnect ends it (review7 CREDS-1, as held sessions do).
      const credential = await LiveCredential.read(broker, principalKey, target, signal);
      const token = credential.token;
      if (token !== undefined || !broker.demands(target))
        return { ...target, bearerToken: token, credential };
      throw offer
        ? await broker.required(principalKey, target, undefined, undefined, undefined, signal)
        : signInNeeded(target);
    },
    async renewed(target: UpstreamTarget) {
      // Only the broker's own token (supply's credential) is refreshed, never an operator's.
      const credential = target.kind === 'stdio' ? undefined : target.credential;
      if (!current()?.enabled || credential === undefined || target.kind === 'stdio') return undefined;
      // The broker refreshes the token this attempt went with when its entry still holds it
      // (review F5, review10 HARD-2), as for a named server.
      if (!(await credential.refused(target.bearerToken))) return undefined;
      return { ...target, bearerToken: credential.bearer() };
    },
    async refused(
      principalKey: string,
      target: UpstreamTarget,
      refusal: ProxyError,
      signal?: AbortSignal,
      offer = true,
    ) {
      const broker = current();
      if (!broker?.enabled || target.kind === 'stdio') return refusal;
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
