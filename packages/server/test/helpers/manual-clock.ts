/**
 * A clock tests move by hand: time stands still until {@link ManualClock.advance}, which runs
 * every repeating task that fell due on the way, in time order. Pass it as `AppDeps.clock`.
 */
import type { Clock } from '../../src/clock.ts';

interface Task {
  readonly intervalMs: number;
  readonly run: () => void;
  due: number;
  cancelled: boolean;
}

/** A {@link Clock} that only moves when told to. */
export class ManualClock implements Clock {
  #now: number;
  readonly #tasks = new Set<Task>();

  /** Starts at `start` ms (default: the real time now, so timestamps look ordinary). */
  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  every(intervalMs: number, run: () => void): () => void {
    const task: Task = {
      intervalMs: Math.max(1, intervalMs),
      run,
      due: this.#now + intervalMs,
      cancelled: false,
    };
    this.#tasks.add(task);
    return () => {
      task.cancelled = true;
      this.#tasks.delete(task);
    };
  }

  /** Moves time forward by `ms`, running each task as often as it fell due. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: Task | undefined;
      for (const task of this.#tasks) if (task.due <= target && (!next || task.due < next.due)) next = task;
      if (!next) break;
      this.#now = next.due;
      next.due += next.intervalMs;
      next.run();
    }
    this.#now = target;
  }
}
