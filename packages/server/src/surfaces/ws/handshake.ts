/**
 * @module surfaces/ws/handshake
 * Everything decided before a `/ws` upgrade completes: Origin (CORS does not protect a
 * WebSocket, so cross-site WebSocket hijacking is refused here), the proxy token (from the
 * `proxy-token.<token>` subprotocol or the `proxy_token` query parameter) and the target.
 * A refusal is an HTTP error on the handshake, never an open socket.
 */
import type { IncomingMessage } from 'node:http';
import { type TargetRequest, TRANSPORT_CHOICES, type TransportChoice } from '../../dispatch/targets.ts';
import { ProxyError } from '../../errors.ts';
import { originAllowed } from '../../http/cors.ts';
import type { Authenticator, CredentialRecheck } from '../../identity/authenticator.ts';
import { bearerOf } from '../../identity/hook.ts';
import type { Principal } from '../../identity/principal.ts';

/** Subprotocol prefix that carries the proxy token, keeping it out of URLs. */
export const TOKEN_PROTOCOL_PREFIX = 'proxy-token.';
/** The one subprotocol the proxy speaks (and echoes). */
export const MCP_PROTOCOL = 'mcp';

/** Handshake policy from the configuration. */
export interface HandshakePolicy {
  readonly corsOrigins: readonly string[];
  readonly allowMissingOrigin: boolean;
}

/** What a valid handshake yields. */
export interface AcceptedHandshake {
  readonly identity: Principal;
  readonly target: TargetRequest;
  /** The subprotocol to echo, if the client offered any. */
  readonly protocol: string | undefined;
  /** Verifies the credential again after a reload (minted and bearer tokens). */
  readonly recheck: CredentialRecheck | undefined;
}

/** Checks an upgrade request; throws a ProxyError for the HTTP refusal. */
export async function checkHandshake(
  request: IncomingMessage,
  authenticator: Authenticator,
  policy: HandshakePolicy,
  resource?: string,
): Promise<AcceptedHandshake> {
  const origin = request.headers.origin;
  if (origin === undefined) {
    if (!policy.allowMissingOrigin) {
      throw new ProxyError(
        'origin_forbidden',
        'WebSocket connections without an Origin header are refused: set WS_ALLOW_MISSING_ORIGIN=true for non-browser clients.',
      );
    }
  } else if (!originAllowed(policy.corsOrigins, origin)) {
    throw new ProxyError('origin_forbidden');
  }

  const offered = (request.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const query = new URL(request.url ?? '/', 'http://ws.invalid').searchParams;
  const fromProtocol = offered
    .find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX))
    ?.slice(TOKEN_PROTOCOL_PREFIX.length);
  const presented = fromProtocol || query.get('proxy_token') || bearerOf(request.headers.authorization);
  if (!presented) {
    throw new ProxyError(
      'unauthorized',
      'Missing proxy token: offer the subprotocol "proxy-token.<token>" (or the proxy_token query parameter).',
    );
  }
  if (offered.length > 0 && !offered.includes(MCP_PROTOCOL)) {
    // A browser fails a handshake whose answer names no offered protocol; we never echo the token one.
    throw new ProxyError('invalid_target', 'Offer the "mcp" subprotocol next to the proxy token.');
  }
  // Taken first: a reload while the verification awaits leaves it stale (checked again when held).
  const recheck = authenticator.recheckOf(presented, origin, resource);
  const identity = await authenticator.authenticate(presented, origin, resource);

  const target = targetFrom(query);
  return {
    identity,
    // The proxy credential sent again as `mcp_token` never goes upstream (no token passthrough).
    target: target.bearerToken === presented ? { ...target, bearerToken: undefined } : target,
    protocol: offered.length > 0 ? MCP_PROTOCOL : undefined,
    recheck: identity.credentialId === undefined ? undefined : recheck,
  };
}

function targetFrom(query: URLSearchParams): TargetRequest {
  const url = query.get('mcp_server_url') ?? undefined;
  const server = query.get('server') ?? undefined;
  const bearerToken = query.get('mcp_token') ?? undefined;
  if ((url === undefined) === (server === undefined)) {
    throw new ProxyError(
      'invalid_target',
      'Give exactly one of the query parameters mcp_server_url or server.',
    );
  }
  if (server !== undefined) return { server, bearerToken };
  const transport = query.get('transport') ?? 'auto';
  if (!(TRANSPORT_CHOICES as readonly string[]).includes(transport)) {
    throw new ProxyError('invalid_target', `transport must be one of ${TRANSPORT_CHOICES.join(', ')}.`);
  }
  return { url: url as string, transport: transport as TransportChoice, bearerToken };
}
