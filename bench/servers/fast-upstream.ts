/**
 * @module bench/servers/fast-upstream
 * A hand-written, stateless Streamable HTTP MCP server on `node:http` (no session, no SDK),
 * plus the same responder over WebSocket at `/ws` for bridged sessions. It is deliberately
 * cheap so that what a benchmark measures through the proxy is the proxy.
 *
 * Two answer modes: `json` (one `application/json` body with its length) and `event-stream`
 * (what the SDK servers send by default: a chunked `text/event-stream` holding one
 * `event: message` per answer, ended once the answers are written). In `event-stream` mode a
 * caller whose `Accept` does not list `text/event-stream` still gets JSON.
 *
 * Usage: `node bench/servers/fast-upstream.ts [port] [json|event-stream] [work µs]` — prints
 * `{"port":N}` once listening. `work µs`: CPU spent (spinning) before each HTTP answer, to stand
 * for a real server's cost on the core it shares with the proxy (issue 16: server-everything
 * spends 300–400 µs a request).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { WebSocketServer } from 'ws';
import { respondAll } from './responder.ts';

const MAX_BODY = 1_048_576;
const mode = process.argv[3] ?? 'json';
if (mode !== 'json' && mode !== 'event-stream') throw new Error(`unknown answer mode: ${mode}`);
const workNs = BigInt(Math.round(Number(process.argv[4] ?? 0) * 1000));

/** Spins for `workNs` (a stand-in for a real server's work on each request). */
function work(): void {
  if (workNs === 0n) return;
  const until = process.hrtime.bigint() + workNs;
  while (process.hrtime.bigint() < until);
}

function handle(request: IncomingMessage, response: ServerResponse): void {
  const path = request.url === undefined ? '/' : request.url.split('?')[0];
  if (path === '/health') {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  if (path !== '/mcp') {
    response.writeHead(404).end();
    return;
  }
  if (request.method !== 'POST') {
    // A stateless server offers no standalone GET stream and has no session to DELETE.
    response.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  request.on('end', () => {
    if (size > MAX_BODY) {
      response.writeHead(413).end();
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
    } catch {
      const body = '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}';
      response.writeHead(400, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const answer = respondAll(parsed);
    work();
    if (answer === undefined) {
      response.writeHead(202).end();
      return;
    }
    if (mode === 'event-stream' && request.headers.accept?.includes('text/event-stream')) {
      // As the SDK's transport does (same headers, no length): one event per answer, then the end.
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      for (const one of Array.isArray(answer) ? answer : [answer]) {
        response.write(`event: message\ndata: ${JSON.stringify(one)}\n\n`);
      }
      response.end();
      return;
    }
    const body = JSON.stringify(answer);
    response
      .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      .end(body);
  });
}

const server = createServer({ keepAliveTimeout: 120_000 }, handle);
server.maxRequestsPerSocket = 0;
server.headersTimeout = 0;
server.requestTimeout = 0;

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (request, socket, head) => {
  if (request.url?.split('?')[0] !== '/ws') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    ws.on('message', (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        return;
      }
      const answer = respondAll(parsed);
      if (answer !== undefined) ws.send(JSON.stringify(answer));
    });
    ws.on('error', () => {});
  });
});

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
