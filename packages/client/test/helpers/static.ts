/**
 * A tiny static server on its own loopback origin for the browser test: serves a page and the
 * client bundle, nothing else.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running static server. */
export interface StaticServer {
  /** `http://127.0.0.1:<port>`: the page's origin. */
  readonly origin: string;
  stop(): Promise<void>;
}

/** Serves `files` (path → [content type, body]) on 127.0.0.1:0; anything else is a 404. */
export async function serveStatic(files: Record<string, readonly [string, string]>): Promise<StaticServer> {
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const file = files[path];
    if (request.method !== 'GET' || !file) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
