/**
 * @module surfaces/ws/early-frames
 * Frames a `/ws` caller sends while its upstream connection still opens. They wait as raw
 * bytes, bounded in frames and bytes, each holding an in-flight slot, and are handled in
 * arrival order once the connection is up (or released if it fails).
 */
import { ProxyError } from '../../errors.ts';
import type { Release } from '../../limits/in-flight.ts';

/** Frames that may wait for the upstream connection to open. */
const MAX_EARLY_FRAMES = 64;
/**
 * Bytes those frames may hold. They wait unparsed: a parsed frame can cost twenty times its
 * size (issue 14, finding 5: 64 parsed 1 MiB frames were ~1.4 GB per socket). One frame is
 * always accepted, so any frame within WS_MAX_MESSAGE_BYTES can open a conversation.
 */
const EARLY_QUEUE_BYTES = 1_048_576;

/** A frame waiting, its in-flight slot, and when it arrived (for its span; 0 untraced). */
export interface EarlyFrame {
  readonly raw: Buffer;
  readonly release: Release;
  readonly at: number;
}

/** The frames of one socket waiting for its upstream connection. */
export class EarlyFrames {
  /** Undefined once the connection is open or failed: frames are handled as they come. */
  #frames: EarlyFrame[] | undefined = [];
  #bytes = 0;

  /** True while frames must wait. */
  get waiting(): boolean {
    return this.#frames !== undefined;
  }

  /**
   * Keeps `raw` waiting, with a slot from `acquire` (a waiting frame is work in flight too: it
   * counts against the token's and the process's caps). Throws when the queue is full or no
   * slot is free: the caller answers with the error.
   */
  keep(raw: Buffer, acquire: () => Release, at = 0): void {
    const frames = this.#frames;
    if (frames === undefined) return;
    if (
      frames.length > 0 &&
      (frames.length >= MAX_EARLY_FRAMES || this.#bytes + raw.length > EARLY_QUEUE_BYTES)
    ) {
      throw new ProxyError(
        'too_many_in_flight',
        'Too many messages before the upstream connection opened: wait for the first answer.',
        { data: { limitBytes: EARLY_QUEUE_BYTES, limitFrames: MAX_EARLY_FRAMES } },
      );
    }
    frames.push({ raw, release: acquire(), at });
    this.#bytes += raw.length;
  }

  /** Ends the wait: the frames that waited, oldest first. */
  take(): EarlyFrame[] {
    const frames = this.#frames ?? [];
    this.#frames = undefined;
    this.#bytes = 0;
    return frames;
  }
}
