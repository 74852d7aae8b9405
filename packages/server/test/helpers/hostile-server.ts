/**
 * @module test/helpers/hostile-server
 * A small loopback HTTP server for hostile parties in the OAuth tests (authorization servers,
 * MCP servers and metadata that misbehave on purpose), and a JSON answer helper.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Answers one request; `body` is the whole request body as text. */
export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  body: string,
) => void | Promise<void>;

/** Starts a server on 127.0.0.1 answering with `handler`; its stop goes into `cleanup`. Returns its base URL. */
export async function serveHostile(
  cleanup: Array<() => Promise<void> | void>,
  handler: Handler,
): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://local');
      Promise.resolve(handler(req, res, url, Buffer.concat(chunks).toString())).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Answers `value` as JSON with `status` (and extra headers). */
export function json(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}

/**
 * The metadata of an authorization server at `issuer` with its endpoints under `base`, which
 * registers clients dynamically (RFC 8414 fields the broker reads).
 */
export function authServerMetadata(base: string, issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    registration_endpoint: `${base}/register`,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
  };
}
