/**
 * @module egress/reloadable-guard
 * An {@link EgressGuard} whose policy can be replaced at run time (SIGHUP reload). New
 * requests and connections go through the new policy at once; connections pooled under the old
 * one are not reused (the old agent is retired), but streams already open keep running until
 * their sessions end, and the retired agents close at shutdown.
 */
import type { LookupFunction } from 'node:net';
import type { Dispatcher } from 'undici';
import { findProxyError } from '../errors.ts';
import { createEgressGuard, type EgressGuardDeps } from './guard.ts';
import type { EgressGuard, EgressPolicy } from './types.ts';

/** Told of each refusal: the host only (a URL's path or query may hold a key), and the reason. */
export type RefusalListener = (host: string, reason: string) => void;

/** A guard that delegates to the current policy's guard. */
export class ReloadableGuard implements EgressGuard {
  readonly #deps: EgressGuardDeps;
  readonly #retired: EgressGuard[] = [];
  readonly #onRefusal: RefusalListener | undefined;
  #current: EgressGuard;

  /** `onRefusal` (the status page) is told of refusals when vetting; without it nothing is added. */
  constructor(policy: EgressPolicy, deps: EgressGuardDeps = {}, onRefusal?: RefusalListener) {
    this.#deps = deps;
    this.#onRefusal = onRefusal;
    this.#current = createEgressGuard(policy, deps);
  }

  /** Switches to a new policy; throws (keeping the old one) if the policy is invalid. */
  replace(policy: EgressPolicy): void {
    const next = createEgressGuard(policy, this.#deps);
    this.#retired.push(this.#current);
    this.#current = next;
  }

  vet(rawUrl: string | URL): Promise<URL> {
    const vetted = this.#current.vet(rawUrl);
    return this.#onRefusal === undefined ? vetted : this.#reported(vetted, rawUrl);
  }

  vetRedirect(from: URL, location: string, hop: number): Promise<URL> {
    const vetted = this.#current.vetRedirect(from, location, hop);
    return this.#onRefusal === undefined
      ? vetted
      : this.#reported(vetted, URL.parse(location, from.href) ?? from);
  }

  /** Reports a refusal of `vetting` to the listener, then rethrows it. */
  #reported(vetting: Promise<URL>, target: string | URL): Promise<URL> {
    return vetting.catch((error: unknown) => {
      const refusal = findProxyError(error);
      if (refusal?.code === 'target_forbidden') {
        const reason = refusal.data.reason;
        this.#onRefusal?.(hostOf(target), typeof reason === 'string' ? reason : 'target_forbidden');
      }
      throw error;
    });
  }

  get dispatcher(): Dispatcher {
    return this.#current.dispatcher;
  }

  readonly lookup: LookupFunction = (hostname, options, callback) =>
    this.#current.lookup(hostname, options, callback);

  describe(): string {
    return this.#current.describe();
  }

  async close(): Promise<void> {
    await Promise.all([this.#current, ...this.#retired].map((guard) => guard.close()));
  }
}

/** The host of a refused target, as written (never its path or query). */
function hostOf(target: string | URL): string {
  if (target instanceof URL) return target.host;
  const parsed = URL.parse(target);
  if (parsed !== null) return parsed.host || '(no host)';
  // Unparseable: keep what sits between the scheme and the path, no further.
  return /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target)?.[1]?.replace(/^.*@/, '') ?? '(unparseable URL)';
}
