/**
 * @module virtual/answer-log
 * How a client session's answer-stream events lie in the store (virtual/answer-events.ts keeps
 * them): append-only, one key per event (a slot) and one small head naming the kept slots and
 * the bytes they take, so an event costs the store about its own size (never a rewrite of the
 * log). A message is kept deflated (base64) when that is smaller; the session's bounds count
 * the larger of the bytes the store holds and the message's own (inflated) bytes, so a message
 * that deflates well cannot fill a reader's memory past them.
 * The head of a forgotten log is a tombstone until the session's expiry: nothing is written to it
 * again.
 */
import { promisify } from 'node:util';
import { deflateRaw, inflateRaw } from 'node:zlib';

/** Events one client session keeps for resumption; past it the oldest are dropped. */
export const MAX_EVENTS_PER_SESSION = 256;
/** Bytes of the store one client session's events take; past it the oldest are dropped. */
export const MAX_EVENT_BYTES_PER_SESSION = 256 * 1024;
/** Bytes a slot costs the store beyond its value (its key, the head's record of it). */
const SLOT_OVERHEAD = 64;
/** Bytes a deflated message kept before its plain size was recorded may inflate to, at most. */
const MAX_INFLATED_BYTES = 16 * 1024 * 1024;

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/** One event: stream, position, the message (JSON; '' the priming event; null the end), deadline. */
export interface Logged {
  readonly s: string;
  readonly n: number;
  readonly m: string | null;
  /** When the stream, silent since this event, is taken for dead (its writer gone). */
  readonly d: number;
}

/** A log's head: the kept slots (from `f` to before `t`) and the store bytes they take. */
export interface Head {
  readonly f: number;
  readonly t: number;
  readonly b: number;
  /** Set once the session was ended: the log is never written again. */
  readonly x?: 1;
}

/** The head of a log with nothing in it yet. */
export const EMPTY_HEAD: Head = { f: 0, t: 0, b: 0 };

/** The head of a forgotten log. */
export const TOMBSTONE: string = JSON.stringify({ ...EMPTY_HEAD, x: 1 } satisfies Head);

/** The store key of slot `slot` of the log under `key`. */
export function slotKey(key: string, slot: number): string {
  return `${key}:${slot}`;
}

/** The head stored under a log's key; an unreadable one is empty (it is only ever written here). */
export function parseHead(value: string | undefined): Head {
  if (value === undefined) return EMPTY_HEAD;
  try {
    const head = JSON.parse(value) as Head;
    return [head.f, head.t, head.b].every(Number.isSafeInteger) ? head : EMPTY_HEAD;
  } catch {
    return EMPTY_HEAD;
  }
}

/** The slot value of `event`: its message deflated (`z`) when that takes fewer bytes. */
export async function encode(event: Logged): Promise<string> {
  const plain = JSON.stringify(event);
  if (event.m === null || event.m === '') return plain;
  const m = (await deflate(event.m)).toString('base64');
  // `p`: the plain bytes, counted against the bounds and the most the message may inflate to.
  const packed = JSON.stringify({ ...event, m, z: 1, p: Buffer.byteLength(event.m) });
  return Buffer.byteLength(packed) < Buffer.byteLength(plain) ? packed : plain;
}

/**
 * The event of a slot value when it is of `stream`; its message inflated only when it comes
 * after position `after` (one at or before it is not replayed). Undefined when unreadable.
 */
export async function decode(value: string, stream: string, after: number): Promise<Logged | undefined> {
  try {
    const event = JSON.parse(value) as Logged & { readonly p?: unknown };
    if (event.s !== stream || !Number.isSafeInteger(event.n) || typeof event.d !== 'number') return undefined;
    if (event.n <= after || event.m === null || !('z' in event)) return event;
    return {
      s: event.s,
      n: event.n,
      d: event.d,
      m: (
        await inflate(Buffer.from(event.m, 'base64'), {
          maxOutputLength: plainBytes(event.p) ?? MAX_INFLATED_BYTES,
        })
      ).toString(),
    };
  } catch {
    return undefined;
  }
}

/** A recorded plain size, when it is one. */
function plainBytes(p: unknown): number | undefined {
  return typeof p === 'number' && Number.isSafeInteger(p) && p > 0 ? p : undefined;
}

/**
 * The bytes a slot value counts against the session's bounds: what the store holds, or the
 * message's plain bytes when it was deflated and they are more (a reader inflates it).
 */
export function sizeOf(value: string): number {
  const stored = Buffer.byteLength(value);
  if (!value.includes('"z":1')) return stored + SLOT_OVERHEAD;
  try {
    const plain = plainBytes((JSON.parse(value) as { readonly p?: unknown }).p) ?? MAX_INFLATED_BYTES;
    return Math.max(stored, plain) + SLOT_OVERHEAD;
  } catch {
    return stored + SLOT_OVERHEAD;
  }
}

/** The store bytes of slot `slot`; undefined when it holds nothing. */
export type SlotSize = (slot: number) => Promise<number | undefined>;

/**
 * The head after slots of `sizes` bytes are added: the oldest dropped while past
 * {@link MAX_EVENTS_PER_SESSION} or {@link MAX_EVENT_BYTES_PER_SESSION}, never the added ones
 * (an answer larger than the bound is kept, alone, with its stream's end). Only the slots
 * dropped are read (for their sizes), unless one of them holds nothing (its writer died before
 * storing it): the bytes of the slots kept are counted again then. `dropped`: how many.
 */
export async function grown(
  head: Head,
  sizes: readonly number[],
  sizeAt: SlotSize,
): Promise<{ head: Head; dropped: number }> {
  const t = head.t + sizes.length;
  const added = sizes.reduce((sum, size) => sum + size, 0);
  let bytes = head.b + added;
  let f = head.f;
  let recount = false;
  while (f < head.t && (t - f > MAX_EVENTS_PER_SESSION || bytes > MAX_EVENT_BYTES_PER_SESSION)) {
    const size = await sizeAt(f);
    if (size === undefined) recount = true;
    bytes -= size ?? 0;
    f++;
  }
  if (recount) {
    const kept = await Promise.all(keptSlots({ f, t: head.t, b: 0 }).map(sizeAt));
    bytes = kept.reduce<number>((sum, size) => sum + (size ?? 0), added);
  }
  return { head: { f, t, b: bytes }, dropped: f - head.f };
}

/** The slots a head keeps. */
export function keptSlots(head: Head): number[] {
  return Array.from({ length: head.t - head.f }, (_, index) => head.f + index);
}
