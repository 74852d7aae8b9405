/**
 * Serves an MCP server per stdio child from the test process: the proxy's config names
 * {@link StdioRelay.server} (fixtures/stdio-relay.ts, a pipe to a Unix socket), and each child's connection gets a server of its own from `create`, as a child
 * loading the server itself would. Starting dozens of children (one per bridged session) then
 * costs dozens of bare Node starts, not dozens of SDK loads.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { compileCacheEnv } from './compile-cache.ts';

const RELAY = fileURLToPath(new URL('../fixtures/stdio-relay.ts', import.meta.url));

/** A relay serving the stdio children a proxy config starts. */
export interface StdioRelay {
  /** The server's entry in a proxy config (`servers: { name: server }`). */
  readonly server: {
    readonly command: string;
    readonly args: string[];
    readonly env: Record<string, string>;
  };
  /** How many children have connected so far. */
  connections(): number;
  /** Stops serving and ends every connection. */
  close(): Promise<void>;
}

/** Listens on a fresh Unix socket; each child connecting to it is served by a new `create()`. */
export async function startStdioRelay(create: () => McpServer): Promise<StdioRelay> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-stdio-relay-'));
  const path = join(dir, 'relay.sock');
  const open = new Set<Socket>();
  let connected = 0;
  const server = createServer((socket) => {
    connected++;
    open.add(socket);
    const mcp = create();
    // The child went away (its session ended, or the proxy killed it): so does its server.
    socket.once('close', () => {
      open.delete(socket);
      void mcp.close().catch(() => {});
    });
    socket.on('error', () => socket.destroy());
    void mcp.connect(new StdioServerTransport(socket, socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return {
    server: { command: process.execPath, args: [RELAY, path], env: compileCacheEnv() },
    connections: () => connected,
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
