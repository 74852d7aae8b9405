/**
 * @module surfaces/proxy/routes
 * `POST /proxy`: one JSON envelope in (target, optional MCP token, JSON-RPC fields), the
 * upstream's JSON-RPC response out. Upstream JSON-RPC errors pass through with HTTP 200;
 * notifications and responses get 202.
 */
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import { serverLabel } from '../../identity/audit-trail.ts';
import { isProxyCredential } from '../../identity/proxy-credential.ts';
import { logsAt } from '../../observability/logger.ts';
import { checkHeaderAgreement } from '../../upstream/request-metadata.ts';
import { envelopeMessage, envelopeTarget, parseEnvelope } from './envelope.ts';
import type { Forwarder } from './forwarder.ts';

/** Registers `POST /proxy` (inside the authenticated scope). */
export async function proxyRoutes(app: FastifyInstance, forwarder: Forwarder): Promise<void> {
  app.post('/proxy', async (request, reply) => {
    const envelope = parseEnvelope(request.body);
    const message = envelopeMessage(envelope);
    request.mcpMethod = envelope.method;
    // The target is named in the access log only: parse the URL for it only when that line is written.
    if (logsAt(request.log, 'info'))
      request.targetHost = envelope.server ?? URL.parse(envelope.mcp_server_url ?? '')?.host;
    const identity = request.identity;
    if (!identity) throw new ProxyError('unauthorized');
    const header = (name: string) => {
      const value = request.headers[name];
      return typeof value === 'string' && value !== '' ? value : undefined;
    };
    if (request.headers['mcp-method'] !== undefined) checkHeaderAgreement(request.headers, message);
    const forwardHeaders: Record<string, string> = {};
    const headers = request.headers;
    // for…in, not Object.entries: no array of pairs built per request for a rare header.
    for (const name in headers) {
      const value = headers[name];
      if (typeof value === 'string' && name.startsWith('mcp-param-')) forwardHeaders[name] = value;
    }
    const named = envelopeTarget(envelope);
    // The proxy credential sent again as `mcp_token` never goes upstream (no token passthrough).
    const target =
      named.bearerToken !== undefined && isProxyCredential(request, named.bearerToken)
        ? { ...named, bearerToken: undefined }
        : named;
    if (request.audit) {
      request.audit.add(message);
      request.audit.server(serverLabel(target));
    }
    // For a reload to judge this call while it runs (what it may still reach).
    request.targetKey = forwarder.requestKey(target);
    const result = await forwarder.forward({
      forwardHeaders,
      identity,
      target,
      sessionId: envelope.mcp_session_id ?? header('mcp-session-id'),
      protocolVersion: envelope.mcp_protocol_version ?? header('mcp-protocol-version'),
      message,
      signal: callerSignal(reply),
      audit: request.audit,
      origin: header('origin'),
      answer: request,
    });
    request.audit?.answer(result.response);
    if (result.sessionId) reply.header('mcp-session-id', result.sessionId);
    if (result.protocolVersion) reply.header('mcp-protocol-version', result.protocolVersion);
    if (!result.response) return reply.code(202).send();
    return reply.code(200).type('application/json').send(result.response);
  });
}
