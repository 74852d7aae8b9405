/**
 * Misbehaving loopback upstreams for error tests: one that never answers, one that demands
 * OAuth credentials.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running hanging server. */
export interface HangingServer {
  readonly url: string;
  /** Requests received so far. */
  readonly received: () => number;
  stop(): Promise<void>;
}

/** Starts a server on 127.0.0.1:0 that reads requests and never replies. */
export async function startHanging(): Promise<HangingServer> {
  const pending = new Set<ServerResponse>();
  let received = 0;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    received++;
    request.resume();
    pending.add(response);
    response.on('close', () => pending.delete(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    received: () => received,
    stop: async () => {
      for (const response of pending) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The `WWW-Authenticate` challenge the refusing upstream sends. */
export const CHALLENGE =
  'Bearer resource_metadata="https://auth.example.test/.well-known/oauth-protected-resource"';

/** Starts a server on 127.0.0.1:0 that answers every request 401 with an OAuth challenge. */
export async function startRefusing(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = createServer((request, response) => {
    request.resume();
    response
      .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': CHALLENGE })
      .end('{"error":"invalid_token"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
