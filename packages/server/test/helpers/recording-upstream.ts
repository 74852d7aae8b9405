/**
 * A minimal Streamable HTTP MCP server on an ephemeral loopback port that records every JSON-RPC
 * message it receives: tests assert what reached the upstream (a hidden tool's call must never
 * arrive), not only what the caller was told.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running recording upstream. */
export interface RecordingUpstream {
  /** Its endpoint (`http://127.0.0.1:PORT/mcp`). */
  readonly url: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON-RPC messages.
  readonly received: readonly any[];
  /** The names of the tools called (requests and notifications alike), oldest first. */
  calledTools(): string[];
  /** How many messages of `method` arrived. */
  count(method: string): number;
  stop(): Promise<void>;
}

/** Starts an upstream offering `tools` (each answers with its own name as text). */
export async function startRecordingUpstream(tools: readonly string[]): Promise<RecordingUpstream> {
  // biome-ignore lint/suspicious/noExplicitAny: recorded JSON-RPC messages.
  const received: any[] = [];
  const server = createServer((req, res) => {
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || 'null');
      const messages = Array.isArray(body) ? body : [body];
      received.push(...messages);
      const answers = messages
        .filter((m) => m && typeof m.method === 'string' && 'id' in m)
        .map((m) => ({ jsonrpc: '2.0', id: m.id, result: resultOf(m, tools) }));
      if (answers.length === 0) return void res.writeHead(202).end();
      res
        .writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'recording-session' })
        .end(JSON.stringify(Array.isArray(body) ? answers : answers[0]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    received,
    calledTools: () => received.filter((m) => m?.method === 'tools/call').map((m) => String(m.params?.name)),
    count: (method) => received.filter((m) => m?.method === method).length,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: a JSON-RPC request.
function resultOf(message: any, tools: readonly string[]): unknown {
  switch (message.method) {
    case 'initialize':
      return {
        protocolVersion: message.params?.protocolVersion ?? '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'recording', version: '1' },
      };
    case 'tools/list':
      return { tools: tools.map((name) => ({ name, inputSchema: { type: 'object' } })) };
    case 'tools/call':
      return { content: [{ type: 'text', text: String(message.params?.name) }] };
    default:
      return {};
  }
}
