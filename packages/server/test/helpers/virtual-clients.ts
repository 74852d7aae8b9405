/**
 * Clients of a virtual server for the virtual-server tests (issue 20): a `/ws?server=<virtual>`
 * socket opened and initialized as a 2025-era client, then asked requests (either era's framing),
 * and the merged tool list across its pages, on a socket or through the SDK client.
 *
 * @module
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectWs, modernRequest, type WsPeer } from './modern-client.ts';

/** How many pages a listing reads at most: a cursor that never ends fails the test, not hangs it. */
const MAX_PAGES = 20;

/** Every tool name `client` lists, across pages. */
export async function listedTools(client: Client): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await client.listTools(cursor === undefined ? {} : { cursor });
    names.push(...result.tools.map((tool) => tool.name));
    cursor = result.nextCursor;
    if (cursor === undefined) return names;
  }
  throw new Error(`tools/list still had a cursor after ${MAX_PAGES} pages`);
}

/** Opens `/ws?server=<server>` with `token` from `origin` and initializes it (2025 era). */
export async function openVirtualSocket(
  proxyUrl: string,
  token: string,
  server: string,
  origin: string,
): Promise<WsPeer> {
  const peer = await connectWs({ url: proxyUrl, token }, { server }, origin);
  peer.send({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
  });
  await peer.next((frame) => frame.id === 0);
  peer.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return peer;
}

/** Asks requests on sockets under ids of its own, and lists tools across pages. */
export interface SocketAsker {
  /** The answer to `method` (`modern`: framed as a 2026-07-28 request). */
  // biome-ignore lint/suspicious/noExplicitAny: frames are arbitrary JSON.
  ask(peer: WsPeer, method: string, params?: object, modern?: boolean): Promise<any>;
  /** Every page of the merged tool list, as the socket's client sees it. */
  listTools(peer: WsPeer, modern?: boolean): Promise<string[]>;
}

/** A {@link SocketAsker} numbering its requests from 1. */
export function socketAsker(): SocketAsker {
  let id = 0;
  const ask: SocketAsker['ask'] = async (peer, method, params, modern = false) => {
    const sent = ++id;
    peer.send(
      modern
        ? modernRequest(sent, method, { ...params })
        : { jsonrpc: '2.0', id: sent, method, ...(params ? { params } : {}) },
    );
    return peer.next((frame) => frame.id === sent);
  };
  return {
    ask,
    async listTools(peer, modern = false) {
      const names: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < MAX_PAGES; pages++) {
        const page = await ask(peer, 'tools/list', cursor === undefined ? {} : { cursor }, modern);
        names.push(...page.result.tools.map((tool: { name: string }) => tool.name));
        cursor = page.result.nextCursor;
        if (cursor === undefined) return names;
      }
      throw new Error(`tools/list still had a cursor after ${MAX_PAGES} pages`);
    },
  };
}
