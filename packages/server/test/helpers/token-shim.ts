/**
 * A loopback pass-through in front of the proxy that adds `X-Proxy-Token` to requests whose URL
 * carries no `proxy_token` query parameter, and changes nothing else (method, path, query,
 * headers including Host and Origin, body and the streamed answer go through as they are; a
 * caller that leaves makes the shim leave too).
 *
 * Why: the conformance CLI cannot set headers, so its URL carries the token
 * (`ALLOW_QUERY_TOKEN=true`), but the raw `node:http` requests of the 0.2.0-alpha.12 SEP-2243
 * scenarios (`http-header-validation`, `http-custom-header-server-validation`) are sent to the
 * URL's path alone, without its query, and would otherwise meet the proxy's 401.
 *
 * @module
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running shim. */
export interface TokenShim {
  /** `http://127.0.0.1:<port>`: use it in place of the proxy's base URL. */
  readonly url: string;
  close(): Promise<void>;
}

/** Hop-by-hop headers of the proxy's answer that node:http sets itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/** Starts a shim that forwards to `target` (the proxy's base URL), adding `token` when needed. */
export async function startTokenShim(target: string, token: string): Promise<TokenShim> {
  const { hostname, port } = new URL(target);
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    const headers = { ...req.headers };
    if (!new URL(path, 'http://shim').searchParams.has('proxy_token')) headers['x-proxy-token'] = token;
    const forwarded = request({ hostname, port, method: req.method, path, headers }, (answer) => {
      const kept = Object.entries(answer.headers).filter(([name]) => !HOP_BY_HOP.has(name));
      res.writeHead(answer.statusCode ?? 502, Object.fromEntries(kept));
      res.flushHeaders();
      answer.pipe(res);
    });
    forwarded.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => {
      if (!res.writableFinished) forwarded.destroy();
    });
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
