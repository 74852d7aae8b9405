/**
 * @module upstream/flow-gate
 * A pause switch for reading upstream: when the inbound side (e.g. a slow WebSocket reader)
 * falls behind, readers wait at the gate instead of piling messages up in memory.
 */

/** Open or closed; readers `await gate.pass()` before taking the next chunk. */
export class FlowGate {
  #waiting: PromiseWithResolvers<void> | undefined;

  /** True while readers are held. */
  get paused(): boolean {
    return this.#waiting !== undefined;
  }

  /** Holds readers at their next chunk. */
  pause(): void {
    this.#waiting ??= Promise.withResolvers<void>();
  }

  /** Lets readers go on. */
  resume(): void {
    this.#waiting?.resolve();
    this.#waiting = undefined;
  }

  /** Resolves at once when open, else when resumed. */
  pass(): Promise<void> | undefined {
    return this.#waiting?.promise;
  }
}
