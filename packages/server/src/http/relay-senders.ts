/**
 * @module http/relay-senders
 * Replay protection for sealed relay `open`s, kept per SENDING INSTANCE (review 8, SHARED-1).
 * Each relaying instance numbers the opens it seals (1, 2, … for one boot, under a random boot
 * nonce of its process); an owner keeps, per sender and boot, the highest number heard and which
 * of the {@link WINDOW} numbers below it were heard, so an open replayed by whoever can publish to
 * the store is recognized without remembering one entry per open. Memory grows with the
 * instances that relay to this one, not with requests or principals: no caller fills it for
 * another. A sender is forgotten once none of its opens has been heard for `keepMs` (twice the
 * seal's freshness: by then every open it sent is too old to open, so nothing can be replayed);
 * past `maxSenders` fresh senders, a new one's opens are refused (retry) rather than forgetting
 * one that could be replayed.
 */

/** How many numbers below the highest heard are remembered (a pub/sub channel keeps order). */
const WINDOW = 256;
/** Longest instance id and boot nonce taken (the proxy's are far shorter). */
const MAX_ID_CHARS = 128;

/** What an open's sender numbers carry (inside the seal). */
export interface NumberedOpen {
  /** The sending instance. */
  readonly from: string;
  /** Its boot nonce. */
  readonly boot?: unknown;
  /** Its number among the sender's opens in that boot (from 1). */
  readonly seq?: unknown;
}

/** How an open is taken: run it; drop it (a replay); or refuse it (retry: no room, unnumbered). */
export type OpenVerdict = 'fresh' | 'replay' | 'refused';

/** What one sender's boot has sent. */
interface Sender {
  highest: number;
  /** `seen[n % WINDOW] === n` when `n` was heard. */
  readonly seen: Float64Array;
  lastHeard: number;
}

/** The limits and clock of {@link RelaySenders}. */
export interface RelaySendersOptions {
  readonly maxSenders: number;
  readonly keepMs: number;
  readonly now?: () => number;
}

/** Per sending instance: which of its opens were heard. */
export class RelaySenders {
  readonly #options: RelaySendersOptions;
  readonly #now: () => number;
  /** By `from boot`, least recently heard first. */
  readonly #senders = new Map<string, Sender>();

  constructor(options: RelaySendersOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** How `open` is taken; a fresh one is now heard. */
  hear(open: NumberedOpen): OpenVerdict {
    const { from, boot, seq } = open;
    if (
      typeof from !== 'string' ||
      typeof boot !== 'string' ||
      from.length > MAX_ID_CHARS ||
      boot.length > MAX_ID_CHARS ||
      typeof seq !== 'number' ||
      !Number.isSafeInteger(seq) ||
      seq < 1
    )
      return 'refused';
    const now = this.#now();
    this.#forgetIdle(now);
    const key = `${from} ${boot}`;
    let sender = this.#senders.get(key);
    if (sender === undefined) {
      if (this.#senders.size >= this.#options.maxSenders) return 'refused';
      sender = { highest: 0, seen: new Float64Array(WINDOW), lastHeard: now };
    } else if (seq <= sender.highest - WINDOW || sender.seen[seq % WINDOW] === seq) return 'replay';
    sender.seen[seq % WINDOW] = seq;
    sender.highest = Math.max(sender.highest, seq);
    sender.lastHeard = now;
    // Least recently heard first: the idle ones are found at the front.
    this.#senders.delete(key);
    this.#senders.set(key, sender);
    return 'fresh';
  }

  /** Forgets senders none of whose opens could still open (heard last more than `keepMs` ago). */
  #forgetIdle(now: number): void {
    for (const [key, sender] of this.#senders) {
      if (now - sender.lastHeard <= this.#options.keepMs) return;
      this.#senders.delete(key);
    }
  }
}
