/**
 * @module surfaces/info
 * `GET /`: what this proxy is and which endpoints it serves. No secrets, no configuration.
 */
import type { FastifyInstance } from 'fastify';
import { PRODUCT_NAME, VERSION } from '../version.ts';

/** Registers `GET /`. */
export async function infoRoutes(app: FastifyInstance): Promise<void> {
  const body = {
    name: PRODUCT_NAME,
    version: VERSION,
    description: 'Forwards MCP JSON-RPC from frontends to MCP servers, with auth, CORS and an SSRF guard.',
    auth: { header: 'X-Proxy-Token', bearer: 'Authorization: Bearer' },
    endpoints: [
      { method: 'GET', path: '/', auth: false, description: 'This document.' },
      { method: 'GET', path: '/health', auth: false, description: 'Liveness.' },
      { method: 'GET', path: '/ready', auth: false, description: 'Readiness (503 while shutting down).' },
      {
        method: 'GET',
        path: '/client/mcp-proxy-client.js',
        auth: false,
        description: 'The browser client as one ES module: import it from a page.',
      },
      { method: 'POST', path: '/proxy', auth: true, description: 'Forward one JSON-RPC message (envelope).' },
      {
        method: 'POST, GET, DELETE',
        path: '/mcp',
        auth: true,
        description: 'MCP Streamable HTTP endpoint; target in the X-MCP-Server-URL header.',
      },
      {
        method: 'GET (WebSocket)',
        path: '/ws',
        auth: true,
        description: 'JSON-RPC over WebSocket; token in the proxy-token.<token> subprotocol.',
      },
      {
        method: 'POST, GET, DELETE',
        path: '/servers/{name}/mcp',
        auth: true,
        description: 'MCP Streamable HTTP endpoint for a server configured by the operator.',
      },
      {
        method: 'POST',
        path: '/auth/tokens',
        auth: true,
        description: 'Mint a short-lived user token (admin token only).',
      },
      {
        method: 'DELETE',
        path: '/auth/tokens/{id}',
        auth: true,
        description: 'Revoke a minted token (admin token only).',
      },
    ],
  };
  app.get('/', async () => body);
}
