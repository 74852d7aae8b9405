/**
 * @module surfaces/mcp/url-elicitation
 * How `/mcp` tells an MCP client that the user must sign in to the upstream first (issue 18): the
 * JSON-RPC error MCP 2025-11-25 defines for it, URLElicitationRequiredError (-32042), whose
 * `data.elicitations` lists one URL-mode elicitation: the broker's one-time `authorizeUrl`. The
 * proxy's own fields (`code`, `authorizeUrl`, `server`) ride along in `data` for clients that
 * know them.
 */
import { randomUUID } from 'node:crypto';
import type { JsonRpcId, ProxyError } from '../../errors.ts';
import type { JsonRpcResponse } from '../../jsonrpc.ts';

/** MCP's URLElicitationRequiredError code (2025-11-25). */
export const URL_ELICITATION_REQUIRED = -32042;

/** The -32042 answer to request `id` for an `upstream_auth_required` error. */
export function urlElicitationRequired(id: JsonRpcId, error: ProxyError): JsonRpcResponse {
  const url = String(error.data.authorizeUrl);
  const server = String(error.data.server);
  const message = `Sign in to ${server} to continue: open the link, finish signing in, then retry.`;
  return {
    jsonrpc: '2.0',
    id,
    error: {
      code: URL_ELICITATION_REQUIRED,
      message: error.message,
      data: {
        elicitations: [{ mode: 'url', elicitationId: randomUUID(), url, message }],
        code: error.code,
        authorizeUrl: url,
        server,
      },
    },
  } as JsonRpcResponse;
}
