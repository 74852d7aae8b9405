/**
 * @module workers/listener-gate
 * When a draining worker may start answering `Connection: close` (issue 19). Each such answer
 * makes a load balancer open a new connection; while the port still listens, the kernel accepts
 * it, and if the listener then closes before a worker takes it, it is reset with its request
 * (nginx does not retry a POST it has sent). Under `WORKERS` the primary holds the listener and
 * closes it only when the last worker stops accepting: when every worker stops at once (SIGTERM
 * to the primary), the first must not close connections while the last still accepts. So each
 * worker says when it stopped accepting and waits for the primary's word that no new connection
 * can reach it: at once when others keep serving (a rolling restart, a lone worker stopping),
 * else once every worker has stopped accepting (the listener is closed then: the cluster's own
 * messages on the same channel arrived first).
 */
import type { Worker } from 'node:cluster';
import type { IpcPort } from '../store/cluster-store.ts';

/** Worker -> primary: it no longer accepts connections. */
const NOT_ACCEPTING = { mcppDrain: 'not-accepting' } as const;
/** Primary -> worker: no new connection reaches it any more. */
const CLOSED = { mcppDrain: 'listener-closed' } as const;

/** True for a message `kind` of this protocol. */
function isDrain(message: unknown, kind: string): boolean {
  return (
    typeof message === 'object' && message !== null && (message as { mcppDrain?: unknown }).mcppDrain === kind
  );
}

/** A worker's half: after it stopped accepting, resolves once the primary says none can arrive. */
export function listenerClosed(primary: IpcPort): Promise<void> {
  return new Promise((resolve) => {
    const listener = (message: unknown) => {
      if (!isDrain(message, CLOSED.mcppDrain)) return;
      primary.off('message', listener);
      resolve();
    };
    primary.on('message', listener);
    primary.send(NOT_ACCEPTING, () => {});
  });
}

/** The primary's half. */
export class ListenerGate {
  /** Workers that stopped accepting and wait for the word. */
  readonly #waiting = new Set<Worker>();
  readonly #live: () => readonly Worker[];
  #allStopping = false;

  /** `live` lists the workers running now. */
  constructor(live: () => readonly Worker[]) {
    this.#live = live;
  }

  /** Listens to `worker`'s drain messages. */
  attach(worker: Worker): void {
    worker.on('message', (message: unknown) => {
      if (!isDrain(message, NOT_ACCEPTING.mcppDrain)) return;
      this.#waiting.add(worker);
      this.#release();
    });
    worker.once('exit', () => {
      this.#waiting.delete(worker);
      this.#release();
    });
  }

  /** Every worker is being stopped: the listener closes with the last one. */
  stoppingAll(): void {
    this.#allStopping = true;
  }

  #release(): void {
    if (this.#allStopping && this.#live().some((worker) => !this.#waiting.has(worker))) return;
    for (const worker of this.#waiting) if (worker.isConnected()) worker.send(CLOSED, undefined, () => {});
    this.#waiting.clear();
  }
}
