/**
 * The HTTP+SSE (2024-11-05) side of the OAuth test world's upstream (helpers/oauth-world.ts,
 * `transport: 'sse'`): an SDK v1 server per GET stream, its POSTs routed by `sessionId`. The
 * world checks the bearer token of every request (the stream's GET and each POST) before this.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';

/** What the world verified of a request's token, as the SDK's `req.auth` carries it. */
export interface VerifiedAuth {
  readonly token: string;
  readonly clientId: string;
  readonly scopes: string[];
  readonly extra: Record<string, unknown>;
}

/** The open HTTP+SSE sessions of one upstream. */
export class SseSessions {
  readonly #messagesPath: string;
  readonly #build: () => McpServer;
  readonly #open = new Map<string, { transport: SSEServerTransport; res: ServerResponse }>();

  constructor(messagesPath: string, build: () => McpServer) {
    this.#messagesPath = messagesPath;
    this.#build = build;
  }

  /** How many streams are open. */
  get size(): number {
    return this.#open.size;
  }

  /** A GET opens a stream (its first event names the POST endpoint); a POST goes to its session. */
  async serve(req: IncomingMessage, res: ServerResponse, url: URL, body: unknown, auth: VerifiedAuth) {
    if (req.method === 'GET') {
      const transport = new SSEServerTransport(this.#messagesPath, res);
      this.#open.set(transport.sessionId, { transport, res });
      res.on('close', () => this.#open.delete(transport.sessionId));
      await this.#build().connect(transport);
      return;
    }
    const session = this.#open.get(url.searchParams.get('sessionId') ?? '');
    if (session === undefined) {
      res.writeHead(404).end();
      return;
    }
    (req as IncomingMessage & { auth?: unknown }).auth = auth;
    await session.transport.handlePostMessage(req as never, res, body);
  }

  /** Ends every stream (the upstream stops, or drops its clients). */
  close(): void {
    for (const { res } of this.#open.values()) res.destroy();
    this.#open.clear();
  }
}
