/**
 * @module bench/servers/node-floor
 * The least a Node proxy can spend per request: a `node:http` server that forwards each POST
 * body to one fixed upstream with undici (keep-alive pool, the client the proxy uses) and sends
 * the answer back. No auth, no validation, no egress guard, no logging. What the real proxy
 * spends above this floor is its own code; what this spends above nginx is Node's.
 *
 * Usage: `node bench/servers/node-floor.ts <upstream URL>` — prints `{"port":N}` once listening.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';

const upstream = new URL(process.argv[2] ?? 'http://127.0.0.1:1/mcp');
const dispatcher = new Agent({ keepAliveTimeout: 60_000 });

const server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    request(upstream, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: req.headers.accept ?? 'application/json',
        // A stateful server's session (server-everything), as any forwarder must pass it on.
        ...sessionHeaders(req.headers),
      },
      body: Buffer.concat(chunks),
      dispatcher,
    }).then(
      async (answer) => {
        const body = Buffer.from(await answer.body.arrayBuffer());
        res.writeHead(answer.statusCode, {
          'content-type': String(answer.headers['content-type'] ?? 'application/json'),
          'content-length': body.length,
        });
        res.end(body);
      },
      () => res.writeHead(502).end(),
    );
  });
});
server.maxRequestsPerSocket = 0;

function sessionHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const id = headers['mcp-session-id'];
  const version = headers['mcp-protocol-version'];
  if (typeof id !== 'string') return {};
  return typeof version === 'string'
    ? { 'mcp-session-id': id, 'mcp-protocol-version': version }
    : { 'mcp-session-id': id };
}
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
