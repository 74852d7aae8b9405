/**
 * @module bench/clients/idle-clients
 * Opens idle connections for the memory figures and keeps them open:
 * - `ws`: WebSockets to `/ws`, each after one `ping` round trip (so its upstream side exists);
 * - `mcp`: `/mcp` sessions bridged to a WebSocket upstream (initialize +
 *   notifications/initialized), after which the client holds nothing but the session id.
 * Reads `open <total>` lines on stdin and answers `OPENED <total> <failed>`; `quit` exits.
 *
 * Usage: `node bench/clients/idle-clients.ts '{"mode":"ws"|"mcp","url":…,"token":…,
 *   "origin":…,"upstream":…}'`
 */
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

interface Options {
  readonly mode: 'ws' | 'mcp';
  /** ws: the full /ws URL; mcp: the proxy's /mcp URL. */
  readonly url: string;
  readonly token: string;
  readonly origin: string;
  /** mcp: the upstream URL for X-MCP-Server-URL. */
  readonly upstream?: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const held: WebSocket[] = [];
let opened = 0;
let failed = 0;
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

function openSocket(): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(options.url, ['mcp', `proxy-token.${options.token}`], {
      headers: { origin: options.origin },
      perMessageDeflate: false,
    });
    ws.once('open', () => ws.send('{"jsonrpc":"2.0","id":1,"method":"ping"}'));
    ws.once('message', () => {
      held.push(ws);
      resolve();
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) =>
      reject(new Error(`refused ${response.statusCode}`)),
    );
  });
}

function postJson(
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; sessionId?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      options.url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'x-proxy-token': options.token,
          'x-mcp-server-url': options.upstream ?? '',
          ...headers,
        },
      },
      (response) => {
        response.resume();
        response.once('end', () => {
          const sessionId = response.headers['mcp-session-id'];
          resolve({
            status: response.statusCode ?? 0,
            ...(typeof sessionId === 'string' ? { sessionId } : {}),
          });
        });
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

async function openSession(): Promise<void> {
  const init = await postJson(
    {},
    '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}',
  );
  if (init.status !== 200 || init.sessionId === undefined) throw new Error(`initialize: ${init.status}`);
  const done = await postJson(
    { 'mcp-session-id': init.sessionId, 'mcp-protocol-version': '2025-06-18' },
    '{"jsonrpc":"2.0","method":"notifications/initialized"}',
  );
  if (done.status !== 202) throw new Error(`notifications/initialized: ${done.status}`);
}

async function openUpTo(total: number): Promise<void> {
  const open = options.mode === 'ws' ? openSocket : openSession;
  while (opened + failed < total) {
    const batch = Math.min(64, total - opened - failed);
    const results = await Promise.allSettled(Array.from({ length: batch }, open));
    for (const result of results) {
      if (result.status === 'fulfilled') opened++;
      else {
        failed++;
        if (failed <= 3) process.stderr.write(`open failed: ${String(result.reason)}\n`);
      }
    }
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [command, argument] = line.trim().split(/\s+/);
  if (command === 'open') {
    await openUpTo(Number(argument));
    process.stdout.write(`OPENED ${opened} ${failed}\n`);
  } else if (command === 'quit') {
    break;
  }
}
for (const ws of held) ws.terminate();
process.exit(0);
