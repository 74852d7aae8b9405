/**
 * @module egress/reloadable-guard
 * An {@link EgressGuard} whose policy can be replaced at run time (SIGHUP reload). New
 * requests and connections go through the new policy at once; connections pooled under the old
 * one are not reused (the old agent is retired), but streams already open keep running until
 * their sessions end, and the retired agents close at shutdown.
 */
import type { LookupFunction } from 'node:net';
import type { Dispatcher } from 'undici';
import { createEgressGuard, type EgressGuardDeps } from './guard.ts';
import type { EgressGuard, EgressPolicy } from './types.ts';

/** A guard that delegates to the current policy's guard. */
export class ReloadableGuard implements EgressGuard {
  readonly #deps: EgressGuardDeps;
  readonly #retired: EgressGuard[] = [];
  #current: EgressGuard;

  constructor(policy: EgressPolicy, deps: EgressGuardDeps = {}) {
    this.#deps = deps;
    this.#current = createEgressGuard(policy, deps);
  }

  /** Switches to a new policy; throws (keeping the old one) if the policy is invalid. */
  replace(policy: EgressPolicy): void {
    const next = createEgressGuard(policy, this.#deps);
    this.#retired.push(this.#current);
    this.#current = next;
  }

  vet(rawUrl: string | URL): Promise<URL> {
    return this.#current.vet(rawUrl);
  }

  vetRedirect(from: URL, location: string, hop: number): Promise<URL> {
    return this.#current.vetRedirect(from, location, hop);
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
