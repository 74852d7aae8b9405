/**
 * @module http/inbound-checks
 * The Streamable HTTP transport's own rules for inbound requests: Origin validation (403 for
 * a present, foreign Origin), Host validation against DNS rebinding (on by default when the
 * proxy is bound to loopback), and the Accept and MCP-Protocol-Version checks.
 */
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import { originAllowed } from './cors.ts';

/** Protocol versions the session-based `/mcp` endpoint speaks. */
export const SESSION_PROTOCOL_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'];

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Inbound policy derived from the configuration. */
export interface InboundPolicy {
  readonly corsOrigins: readonly string[];
  /** Host header values accepted; empty = no check unless bound to loopback. */
  readonly trustedHosts: readonly string[];
  /** The interface the proxy listens on. */
  readonly bindHost: string;
}

/** Rejects requests whose Host or Origin the proxy must not serve. */
export function checkHostAndOrigin(request: FastifyRequest, policy: InboundPolicy): void {
  const host = (request.headers.host ?? '').toLowerCase();
  if (!hostTrusted(host, policy)) throw new ProxyError('host_forbidden');
  const origin = request.headers.origin;
  if (origin === undefined) return;
  if (originAllowed(policy.corsOrigins, origin)) return;
  // Same-origin requests are fine: the Host check above already vouched for the host.
  const parsed = URL.parse(origin);
  if (parsed && parsed.host.toLowerCase() === host) return;
  throw new ProxyError('origin_forbidden');
}

function hostTrusted(host: string, policy: InboundPolicy): boolean {
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] ?? '');
  if (policy.trustedHosts.length > 0) {
    return policy.trustedHosts.some((trusted) => {
      const t = trusted.toLowerCase();
      return t === host || t === hostname;
    });
  }
  return isLoopbackBind(policy.bindHost) ? LOOPBACK_NAMES.has(hostname) : true;
}

function isLoopbackBind(bindHost: string): boolean {
  return bindHost === 'localhost' || bindHost === '::1' || bindHost.startsWith('127.');
}

/** True when the client accepts an event stream. */
export function acceptsEventStream(request: FastifyRequest): boolean {
  return mediaTypes(request).some((t) => t === 'text/event-stream' || t === '*/*');
}

/** True when the client accepts JSON. */
export function acceptsJson(request: FastifyRequest): boolean {
  return mediaTypes(request).some((t) => t === 'application/json' || t === '*/*');
}

/** Refuses a protocol version header the session-based endpoint does not speak. */
export function checkProtocolVersion(request: FastifyRequest): void {
  const version = request.headers['mcp-protocol-version'];
  if (typeof version === 'string' && !SESSION_PROTOCOL_VERSIONS.includes(version)) {
    throw new ProxyError(
      'unsupported_protocol_version',
      `Unsupported MCP-Protocol-Version "${version.slice(0, 40)}": supported are ${SESSION_PROTOCOL_VERSIONS.join(', ')}.`,
    );
  }
}

function mediaTypes(request: FastifyRequest): string[] {
  const accept = request.headers.accept ?? '';
  return accept.split(',').map((part) => (part.split(';')[0] ?? '').trim().toLowerCase());
}
