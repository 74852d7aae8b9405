/**
 * @module http/relay-credit
 * The owner's pace of relayed answers (issue 19, review 6 item 2): answer bytes published to the
 * store but not yet acknowledged by the relaying side (`got`) are bounded per exchange (a window)
 * and across every exchange of the instance (a pool), so a few large answers never fill the
 * store's connections, nor Redis's output buffer of a subscriber, with the heartbeats, ownership
 * look-ups and other principals' exchanges queued behind them. An owner whose credit does not
 * come back within the liveness bound gives the exchange up.
 */

/** Waiting for room longer than this ends the exchange (the relaying side has gone quiet). */
type Deadline = { readonly signal: AbortSignal; readonly waitMs: number };

/** A waiter for room in the pool. */
interface Waiter {
  readonly bytes: number;
  readonly admit: () => void;
}

/** Answer bytes in flight from this instance, across exchanges: first come, first served. */
export class InFlightBytes {
  readonly #cap: number;
  readonly #waiting: Waiter[] = [];
  #used = 0;

  constructor(capBytes: number) {
    this.#cap = capBytes;
  }

  /** Resolves once `bytes` more fit (alone they always do); rejects on the deadline. */
  take(bytes: number, deadline: Deadline): Promise<void> {
    if (this.#waiting.length === 0 && this.#fits(bytes)) {
      this.#used += bytes;
      return Promise.resolve();
    }
    return waitFor(deadline, (admit) => {
      const waiter = { bytes, admit };
      this.#waiting.push(waiter);
      return () => {
        const at = this.#waiting.indexOf(waiter);
        if (at !== -1) this.#waiting.splice(at, 1);
      };
    });
  }

  /** Gives back `bytes` and lets in who now fits. */
  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    for (let next = this.#waiting[0]; next !== undefined && this.#fits(next.bytes); next = this.#waiting[0]) {
      this.#waiting.shift();
      this.#used += next.bytes;
      next.admit();
    }
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.#cap;
  }
}

/** One exchange's answer bytes sent and acknowledged, in its window and the instance's pool. */
export class ExchangeCredit {
  readonly #pool: InFlightBytes;
  readonly #windowBytes: number;
  readonly #deadline: Deadline;
  #sent = 0;
  #acked = 0;
  #wake: (() => void) | undefined;

  constructor(pool: InFlightBytes, windowBytes: number, deadline: Deadline) {
    this.#pool = pool;
    this.#windowBytes = windowBytes;
    this.#deadline = deadline;
  }

  /** Resolves once `bytes` more may be published: room in the window, then in the pool. */
  async take(bytes: number): Promise<void> {
    while (this.#sent > this.#acked && this.#sent - this.#acked + bytes > this.#windowBytes)
      await this.#acknowledged();
    await this.#pool.take(bytes, this.#deadline);
    this.#sent += bytes;
  }

  /** The relaying side has received `total` bytes in all (a `got`). */
  acked(total: number): void {
    if (!Number.isSafeInteger(total) || total <= this.#acked || total > this.#sent) return;
    this.#pool.give(total - this.#acked);
    this.#acked = total;
    this.#wake?.();
  }

  /** Waits (bounded) for every byte sent to be acknowledged; what is not is given back anyway. */
  async settle(): Promise<void> {
    try {
      while (this.#sent > this.#acked) await this.#acknowledged();
    } catch {
      // A lost `got` or a relaying side gone: the exchange is over either way.
    } finally {
      this.release();
    }
  }

  /** Gives back to the pool whatever is unacknowledged (the exchange ended). */
  release(): void {
    this.#pool.give(this.#sent - this.#acked);
    this.#acked = this.#sent;
  }

  #acknowledged(): Promise<void> {
    return waitFor(this.#deadline, (wake) => {
      this.#wake = wake;
      return () => {
        this.#wake = undefined;
      };
    });
  }
}

/**
 * Waits until `register`'s callback is called, the deadline passes or its signal aborts;
 * `register` returns how to forget the waiter.
 */
function waitFor(deadline: Deadline, register: (done: () => void) => () => void): Promise<void> {
  const { signal, waitMs } = deadline;
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('the relayed exchange was given up'));
      return;
    }
    const end = (error?: Error) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      forget();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => end(new Error('the relayed exchange was given up'));
    const timer = setTimeout(() => end(new Error('the relaying instance did not take the answer')), waitMs);
    signal.addEventListener('abort', onAbort, { once: true });
    const forget = register(() => end());
  });
}
