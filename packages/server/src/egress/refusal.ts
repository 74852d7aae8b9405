/**
 * @module egress/refusal
 * Builds the one error the egress guard throws. Messages say what the caller can change and
 * never name a resolved address: echoing what an internal name resolves to would turn the proxy
 * into a DNS oracle for the operator's network.
 */
import { ProxyError } from '../errors.ts';
import type { EgressRefusal } from './types.ts';

/** Default caller-facing message for each refusal reason. */
export const REFUSAL_MESSAGES: Readonly<Record<EgressRefusal, string>> = {
  scheme_not_allowed: 'The MCP server URL must use http, https, ws or wss.',
  host_forbidden: 'The proxy refuses to connect to this host.',
  address_forbidden:
    'The MCP server host is or resolves to a loopback, private, link-local or reserved address, which this proxy does not reach by default. An operator can allow such servers with ALLOW_PRIVATE_NETWORKS=true (every private network) or by listing the host in EGRESS_ALLOWED_HOSTS (just that host).',
  dns_failed: 'Could not resolve the MCP server host name.',
  not_in_allowlist: 'The MCP server host is not on this proxy’s egress allowlist.',
  port_not_allowed: 'The proxy does not connect to this port.',
  redirect_refused: 'The MCP server answered with a redirect the proxy will not follow.',
  ambiguous_url: 'The MCP server URL is written in a way URL parsers disagree on; write it plainly.',
};

/** The refusal for cloud metadata and meaningless addresses, which no setting opens. */
export const NEVER_REACHABLE_MESSAGE =
  'The MCP server host is or resolves to a cloud metadata, unspecified, multicast or broadcast address, which this proxy never connects to.';

/** A `target_forbidden` ProxyError whose `data.reason` says why. */
export function refuse(reason: EgressRefusal, message?: string, cause?: unknown): ProxyError {
  return new ProxyError('target_forbidden', message ?? REFUSAL_MESSAGES[reason], {
    data: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}
