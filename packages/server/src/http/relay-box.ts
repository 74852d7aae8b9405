/**
 * @module http/relay-box
 * Relay messages sealed between instances (issue 19, the review's item 8). Whoever can publish
 * to the shared store could otherwise run requests as any principal on any instance (an `open`
 * names its principal), and whoever can read it sees what crosses: the upstream credentials of
 * relayed requests, principals, answers. With `SESSION_SECRET` set, every message is sealed
 * (AES-256-GCM, the vault's sealed box) under a key derived from it for the relay alone, bound to
 * the channel it is published on, and stamped with its time: a message that does not open, was
 * meant for another instance, or is older than {@link MAX_MESSAGE_AGE_MS} is dropped unheard.
 * Without `SESSION_SECRET` the store is trusted as before (docs/security.md). The status page's
 * instance roster seals its beats the same way, under a key of its own (`info`).
 */
import { purposeSeal } from '../store/purpose-seal.ts';

/** The relay's purpose (its key's HKDF label): the relay's key is no other use's key. */
export const RELAY_PURPOSE = 'mcp-proxy relay aes-256-gcm v1';
/** The purpose of the status page's instance roster (observability/instance-roster.ts). */
export const ROSTER_KEY_INFO = 'mcp-proxy status roster aes-256-gcm v1';
/** What ends the time stamp in front of the sealed bytes. */
const DOT = 0x2e;
/** A sealed message older (or further ahead) than this is a replay or a clock gone wrong. */
export const MAX_MESSAGE_AGE_MS = 30_000;

/** Seals and opens relay messages (bytes: an answer's travel as they are, encoded once by the seal). */
export interface RelayBox {
  /** `plain` sealed for `channel`. */
  seal(channel: string, plain: Uint8Array): string;
  /** The bytes sealed for `channel`, if `sealed` opens there and is fresh; undefined otherwise. */
  open(channel: string, sealed: string): Buffer | undefined;
  /** A keyed name for `text` under the purpose's own naming key (store/purpose-seal.ts). */
  name(text: string): string;
}

/**
 * The box for `secrets` (newest first: the first seals, every one opens, as for session ids);
 * undefined without any (`SESSION_SECRET` unset: messages travel as they are). `purpose` keys
 * another use of time-stamped messages between instances (store/purpose-seal.ts).
 */
export function relayBox(
  secrets: readonly string[],
  now: () => number = Date.now,
  purpose: string = RELAY_PURPOSE,
): RelayBox | undefined {
  const box = purposeSeal(secrets, purpose);
  if (box === undefined) return undefined;
  return {
    seal: (channel, plain) => box.seal(channel, Buffer.concat([Buffer.from(`${now()}.`), plain])),
    open: (channel, sealed) => {
      const plain = box.open(channel, sealed);
      if (plain === undefined) return undefined;
      const dot = plain.indexOf(DOT);
      const at = Number(plain.subarray(0, Math.max(0, dot)).toString('latin1'));
      if (dot <= 0 || !Number.isFinite(at) || Math.abs(now() - at) > MAX_MESSAGE_AGE_MS) return undefined;
      return plain.subarray(dot + 1);
    },
    name: box.name,
  };
}
