/**
 * @module surfaces/mcp/routes
 * `POST|GET|DELETE /mcp` (target named by the `X-MCP-Server-URL` header) and
 * `/servers/{name}/mcp` (a server from the operator's config): the Streamable HTTP endpoint.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { McpEndpoint } from './endpoint.ts';

/** Registers the Streamable HTTP routes (inside the authenticated scope). */
export async function mcpRoutes(app: FastifyInstance, endpoint: McpEndpoint): Promise<void> {
  const methods: Array<'GET' | 'POST' | 'DELETE'> = ['GET', 'POST', 'DELETE'];
  app.route({
    method: methods,
    url: '/mcp',
    handler: (request, reply) => endpoint.handle(request, reply),
  });
  app.route<{ Params: { name: string } }>({
    method: methods,
    url: '/servers/:name/mcp',
    handler: (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) =>
      endpoint.handle(request, reply, request.params.name),
  });
}
