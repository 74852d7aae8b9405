/**
 * @module egress/special-names
 * Host names the guard judges without asking DNS: loopback names (RFC 6761 §6.3) and cloud
 * metadata names. Checking names as well as addresses is defence in depth: the address check
 * alone would already refuse what these names resolve to inside a cloud.
 */
import type { ResolvedAddress } from './types.ts';

/** Metadata service names; refused whatever the policy says. */
export const METADATA_NAMES: ReadonlySet<string> = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
  'rancher-metadata',
]);

/**
 * What loopback names resolve to. RFC 6761 §6.3 says resolvers SHOULD answer them with loopback
 * themselves rather than asking DNS, which also stops a hostile resolver answering otherwise.
 */
export const LOOPBACK_ANSWERS: readonly ResolvedAddress[] = Object.freeze([
  Object.freeze({ address: '127.0.0.1', family: 4 }),
  Object.freeze({ address: '::1', family: 6 }),
]);

/** Lower-cases a host name and drops trailing dots, so `LOCALHOST.` and `localhost` compare equal. */
export function normaliseHostName(name: string): string {
  let end = name.length;
  while (end > 0 && name.charCodeAt(end - 1) === 0x2e) end--;
  return name.slice(0, end).toLowerCase();
}

/** True for `localhost` and any name under `.localhost` (RFC 6761 §6.3); expects a normalised name. */
export function isLoopbackName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** True for a cloud metadata service name; expects a normalised name. */
export function isMetadataName(name: string): boolean {
  return METADATA_NAMES.has(name);
}
