/**
 * @module egress/pinned-lookup
 * The connect-time half of the guard. `net.connect` and `tls.connect` call the lookup below
 * instead of `dns.lookup`; it resolves, checks every answer and hands back only those answers,
 * so the address the socket connects to is the address that was checked, in the same call. A
 * DNS rebinding between `vet()` and connect therefore meets the same check again. Only the
 * lookup is replaced, so the Host header and TLS SNI keep the name.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { buildConnector as Connectors } from 'undici';
import type { IpAddress } from './address-policy.ts';
import { parseIpAddress } from './address-policy.ts';
import { refuse } from './refusal.ts';
import type { TargetPolicy } from './target-policy.ts';
import type { ResolvedAddress } from './types.ts';
import { buildConnector } from './undici-parts.ts';
import { checkPort, DEFAULT_PORTS } from './url-policy.ts';

/**
 * Test hook: rewrites the vetted answers just before they are handed to the socket (e.g. maps a
 * vetted public address to 127.0.0.1 where a test server listens). Only honoured when private
 * networks are allowed, and its output is checked again.
 */
export type PinOverride = (
  hostname: string,
  vetted: readonly ResolvedAddress[],
) => readonly ResolvedAddress[];

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

function requestedFamily(options: LookupOptions): 0 | 4 | 6 {
  const family = options.family;
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

/** Builds the resolve-check-pin lookup used by the dispatcher and exported for `ws`. */
export function createPinnedLookup(policy: TargetPolicy, override?: PinOverride): LookupFunction {
  async function vetted(hostname: string): Promise<readonly ResolvedAddress[]> {
    const answers = await policy.resolveHost(hostname);
    if (override === undefined) return answers;
    const rewritten = override(hostname, answers);
    for (const answer of rewritten) {
      const address: IpAddress | undefined = parseIpAddress(answer.address);
      if (address === undefined) throw refuse('address_forbidden');
      policy.checkAddress(address, true);
    }
    return rewritten;
  }

  return (hostname, options, callback) => {
    // Older call sites pass (hostname, callback) or a bare family number.
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts: LookupOptions =
      typeof options === 'object' && options !== null
        ? options
        : { family: typeof options === 'number' ? options : 0 };
    const family = requestedFamily(opts);
    vetted(hostname).then(
      (answers) => {
        const usable = family === 0 ? answers : answers.filter((answer) => answer.family === family);
        const first = usable[0];
        // Leave the promise chain first, so a throwing callback is a normal uncaught error and
        // can never make us call it a second time.
        process.nextTick(() => {
          if (first === undefined) cb(refuse('dns_failed'), '');
          else if (opts.all === true)
            cb(
              null,
              usable.map(({ address, family: f }) => ({ address, family: f })),
            );
          else cb(null, first.address, first.family);
        });
      },
      (error: unknown) => {
        process.nextTick(() => cb(error as NodeJS.ErrnoException, ''));
      },
    );
  };
}

/** Options for {@link createGuardedConnector}. */
export interface GuardedConnectorOptions {
  readonly policy: TargetPolicy;
  readonly lookup: LookupFunction;
  readonly allowedPorts: readonly number[];
  /** Passed to undici's `buildConnector` (TLS settings, connect timeout); `lookup` is ours. */
  readonly connect: Connectors.BuildOptions;
}

/**
 * An undici connector that enforces the port policy and checks IP-literal hosts (which never
 * reach a lookup function) before delegating to undici's own connector with the pinned lookup.
 * With it, even a request that skipped `vet()` cannot leave through the dispatcher.
 */
export function createGuardedConnector(options: GuardedConnectorOptions): Connectors.connector {
  const base = buildConnector({ ...options.connect, lookup: options.lookup } as Connectors.BuildOptions);
  return (connectOptions, callback) => {
    try {
      const port = Number(connectOptions.port) || (DEFAULT_PORTS[connectOptions.protocol] ?? 0);
      checkPort(port, options.allowedPorts);
      const hostname = connectOptions.hostname;
      if (hostname.includes('%')) throw refuse('address_forbidden');
      const literal = parseIpAddress(hostname);
      if (literal !== undefined) options.policy.checkAddress(literal);
    } catch (error) {
      callback(error as Error, null);
      return;
    }
    base(connectOptions, callback);
  };
}
