/**
 * @module surfaces/mcp/inbound
 * What the Streamable HTTP endpoint reads off a request before the dispatch plan sees it: the
 * JSON-RPC body, its era, the messages that may go on, and the target the request names (a
 * configured server, or the `X-MCP-Server-URL` header).
 */
import type { FastifyRequest } from 'fastify';
import {
  type ResolvedTarget,
  type TargetResolver,
  TRANSPORT_CHOICES,
  type TransportChoice,
} from '../../dispatch/targets.ts';
import { clientEraOf, type Era } from '../../eras/classify.ts';
import { ProxyError } from '../../errors.ts';
import { bearerOf } from '../../identity/hook.ts';
import type { Grants } from '../../identity/principal.ts';
import { isProxyCredential } from '../../identity/proxy-credential.ts';
import { isJsonRpcMessage, type JsonRpcMessage, type MessageBatch } from '../../jsonrpc.ts';
import { isRequestAsNotification } from '../../policy/grants.ts';
import { headerValue } from '../../upstream/http.ts';

/** A request header's value; an empty one counts as absent. */
export function header(request: FastifyRequest, name: string): string | undefined {
  const value = headerValue(request.headers, name);
  return value === undefined || value === '' ? undefined : value;
}

/** A POST body as messages: one message or a non-empty batch, else `invalid_message`. */
export function parseBody(body: unknown): MessageBatch {
  const batch = Array.isArray(body);
  const messages = batch ? (body as unknown[]) : [body];
  if (messages.length === 0 || !messages.every(isJsonRpcMessage)) throw new ProxyError('invalid_message');
  return { messages: messages as JsonRpcMessage[], batch };
}

/** The era of a POST: modern when any of its requests is (2026-07-28). */
export function eraOf(request: FastifyRequest, inbound: MessageBatch): Era {
  const version = header(request, 'mcp-protocol-version');
  return inbound.messages.some((message) => 'method' in message && clientEraOf(message, version) === 'modern')
    ? 'modern'
    : 'session';
}

/**
 * The messages that may go on: a notification under a request's method never reaches the
 * upstream (policy/grants.ts `isRequestAsNotification`), it is dropped and audited. Undefined
 * when nothing is left (the caller gets 202, as for any notification).
 */
export function withoutRequestsAsNotifications(
  inbound: MessageBatch,
  request: FastifyRequest,
): MessageBatch | undefined {
  if (!inbound.messages.some(isRequestAsNotification)) return inbound;
  const kept: JsonRpcMessage[] = [];
  for (const message of inbound.messages) {
    if (!isRequestAsNotification(message)) kept.push(message);
    else if ('method' in message) request.audit?.dropped(message);
  }
  return kept.length === 0 ? undefined : { messages: kept, batch: inbound.batch };
}

/** The target a request names: `/servers/{name}/mcp`, or `X-MCP-Server-URL` on `/mcp`. */
export async function resolveTarget(
  targets: TargetResolver,
  request: FastifyRequest,
  serverName: string | undefined,
  { grants, principalKey }: { readonly grants: Grants; readonly principalKey: string },
): Promise<ResolvedTarget> {
  // Authorization is the caller's upstream token unless it carried the proxy credential; the
  // proxy credential itself, sent again as the upstream token, never goes upstream.
  const offered =
    header(request, 'x-mcp-token') ??
    (request.credentialInAuthorization ? undefined : bearerOf(header(request, 'authorization')));
  const bearerToken = offered !== undefined && isProxyCredential(request, offered) ? undefined : offered;
  if (serverName !== undefined)
    return targets.resolve({ server: serverName, bearerToken }, grants, principalKey);
  const url = header(request, 'x-mcp-server-url');
  if (url === undefined) {
    throw new ProxyError(
      'invalid_target',
      'Name the MCP server: send its URL in the X-MCP-Server-URL header, or use /servers/{name}/mcp.',
    );
  }
  const transport = header(request, 'x-mcp-transport') ?? 'auto';
  if (!(TRANSPORT_CHOICES as readonly string[]).includes(transport)) {
    throw new ProxyError('invalid_target', `X-MCP-Transport must be one of ${TRANSPORT_CHOICES.join(', ')}.`);
  }
  return targets.resolve({ url, transport: transport as TransportChoice, bearerToken }, grants, principalKey);
}
