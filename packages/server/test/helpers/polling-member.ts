/**
 * @module test/helpers/polling-member
 * A hand-written 2025-11-25 member with one tool, `spin`, whose answer is an event stream the
 * test writes (`stream`, given the id of the call's request), as it writes each resumption of it
 * (a GET with `Last-Event-ID`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the member answers a call and each resumption with, and what it saw. */
export interface PollingMember {
  readonly url: string;
  /** The `Last-Event-ID` of each resumption, in order. */
  readonly resumedFrom: string[];
  /** When each resumption came (performance.now()), in order. */
  readonly resumedAt: number[];
  stop(): Promise<void>;
}

/** Starts the member; `stream` writes the event stream of the call and of every resumption. */
export async function startPollingMember(
  stream: (res: ServerResponse, lastEventId: string | undefined, callId: number) => void,
): Promise<PollingMember> {
  const resumedFrom: string[] = [];
  const resumedAt: number[] = [];
  let callId = 0;
  const json = (res: ServerResponse, body: object) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', ...body }));
  };
  const results: Record<string, object> = {
    initialize: {
      protocolVersion: '2025-11-25',
      capabilities: { tools: {} },
      serverInfo: { name: 'polling', version: '1' },
    },
    'tools/list': { tools: [{ name: 'spin', inputSchema: { type: 'object' } }] },
  };
  const onPost = (res: ServerResponse, body: string) => {
    const message = JSON.parse(body) as { id?: number; method: string };
    const result = results[message.method];
    if (message.id === undefined) res.writeHead(202).end();
    else if (message.method === 'tools/call') {
      callId = message.id;
      stream(res, undefined, callId);
    } else if (result !== undefined) json(res, { id: message.id, result });
    else json(res, { id: message.id, error: { code: -32601, message: 'unknown method' } });
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const lastEventId = req.headers['last-event-id'];
    if (req.method === 'GET' && typeof lastEventId === 'string') {
      resumedFrom.push(lastEventId);
      resumedAt.push(performance.now());
      stream(res, lastEventId, callId);
    } else if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => onPost(res, Buffer.concat(chunks).toString()));
    } else res.writeHead(405).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    resumedFrom,
    resumedAt,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
