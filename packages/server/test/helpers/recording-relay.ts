/**
 * A transparent HTTP relay on an ephemeral loopback port in front of a real MCP server, recording
 * the `Mcp-Session-Id` each side sends: tests learn the upstream's own session ids (which the
 * proxy must never show a caller) and which ids the proxy forwarded.
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running relay. */
export interface RecordingRelay {
  /** The relay's URL for the upstream URL's path (e.g. `http://127.0.0.1:PORT/mcp`). */
  readonly url: string;
  /** Session ids the upstream issued (response headers), oldest first. */
  readonly issued: readonly string[];
  /** Session ids the proxy sent upstream (request headers), one per request, oldest first. */
  readonly forwarded: readonly string[];
  /** Every request relayed, as `METHOD /path` (query left off), oldest first. */
  readonly requests: readonly string[];
  stop(): Promise<void>;
}

/** Starts a relay to `upstreamUrl` (an http:// URL on loopback). */
export async function startRecordingRelay(upstreamUrl: string): Promise<RecordingRelay> {
  const target = new URL(upstreamUrl);
  const issued: string[] = [];
  const forwarded: string[] = [];
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${(req.url ?? '/').split('?', 1)[0]}`);
    const sent = req.headers['mcp-session-id'];
    if (typeof sent === 'string') forwarded.push(sent);
    const out = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (upstream) => {
        const id = upstream.headers['mcp-session-id'];
        if (typeof id === 'string') issued.push(id);
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
        res.once('close', () => upstream.destroy());
      },
    );
    out.once('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${target.pathname}`,
    issued,
    forwarded,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
