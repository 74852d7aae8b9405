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

/**
 * What an MCP client shows beside the sign-in link (both eras): the one-time code the start
 * page asks for when it is opened without the app (credentials/user-codes.ts), when the link
 * has one. The code rides in the message, never in the URL: the link alone binds nothing.
 */
export function signInPrompt(error: ProxyError, after: string): string {
  const code = typeof error.data.userCode === 'string' ? error.data.userCode : undefined;
  const typed = code === undefined ? '' : ` When the page asks for a code, type ${code}.`;
  return `Sign in to ${String(error.data.server)} to continue: open the link and finish signing in${after}.${typed}`;
}

/** The -32042 answer to request `id` for an `upstream_auth_required` error. */
export function urlElicitationRequired(id: JsonRpcId, error: ProxyError): JsonRpcResponse {
  const url = String(error.data.authorizeUrl);
  const server = String(error.data.server);
  const message = signInPrompt(error, ', then retry');
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
        ...(typeof error.data.userCode === 'string' ? { userCode: error.data.userCode } : {}),
      },
    },
  } as JsonRpcResponse;
}
