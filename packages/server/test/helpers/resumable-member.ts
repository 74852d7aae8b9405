/**
 * @module test/helpers/resume-review
 * What the review10-resume repros share: a virtual server `one` over one member, a member of
 * our own (an SDK v1 stateless server whose tools a test writes), and a raw 2025-11-25 client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { TEST_TOKEN } from './proxy.ts';

/** The config file of a proxy with the virtual server `one` over the member at `url`. */
export function oneMemberConfig(url: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'mcp-proxy-review-resume-')), 'proxy.yaml');
  writeFileSync(
    path,
    `servers:\n  m:\n    url: ${url}\nvirtualServers:\n  one:\n    servers: [m]\n    prefix: none\n`,
  );
  return path;
}

/** Starts an SDK v1 stateless member whose tools `register` adds; resolves with its URL and stop. */
export async function startMember(
  register: (mcp: McpServer) => void,
): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    const mcp = new McpServer({ name: 'member', version: '1.0.0' });
    register(mcp);
    const transport = new StreamableHTTPServerTransport({});
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a {@link startWaitingMember}'s `wait` tool saw: calls started, and those cancelled. */
export interface WaitCalls {
  started: number;
  aborted: number;
}

/**
 * Starts a member whose tool `wait` answers once its call is cancelled (or after `ms`): a call
 * that stays under way until the proxy ends it.
 */
export async function startWaitingMember(
  ms = 20_000,
): Promise<{ url: string; calls: WaitCalls; stop(): Promise<void> }> {
  const calls: WaitCalls = { started: 0, aborted: 0 };
  const member = await startMember((mcp) => {
    mcp.registerTool('wait', { description: `Waits for its cancellation (${ms} ms at most).` }, (extra) => {
      calls.started++;
      return new Promise((resolve) => {
        const done = () => resolve({ content: [{ type: 'text', text: 'over' }] });
        const timer = setTimeout(done, ms);
        extra.signal.addEventListener('abort', () => {
          calls.aborted++;
          clearTimeout(timer);
          done();
        });
      });
    });
  });
  return { ...member, calls };
}

/** One event of an event stream: its id, retry and data, as sent. */
export interface SseEvent {
  readonly id?: string;
  readonly retry?: string;
  readonly data: string;
}

/** The events of an event stream's text (comments left out). */
export function eventsOf(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.split('\n').some((line) => !line.startsWith(':') && line !== ''))
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
      return { ...fields, data: fields.data ?? '' } as SseEvent;
    });
}

/** Reads `response`'s stream up to its first event (the priming one), leaving the rest unread. */
export async function firstEvent(response: Response): Promise<SseEvent> {
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  while (!text.includes('\n\n')) {
    const { done, value } = await reader.read();
    assert.ok(!done, 'the stream opens with its priming event');
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return eventsOf(text)[0] as SseEvent;
}

/** A raw 2025-11-25 client of one proxy's virtual server `one`. */
export function rawClient(base: string, token = TEST_TOKEN) {
  const url = `${base}/servers/one/mcp`;
  const headers = (session?: string) => ({
    authorization: `Bearer ${token}`,
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    ...(session === undefined ? {} : { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' }),
  });
  return {
    url,
    headers,
    async initialize(): Promise<string> {
      const response = await fetch(url, {
        method: 'POST',
        headers: headers(),
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: {
            protocolVersion: '2025-11-25',
            capabilities: {},
            clientInfo: { name: 'raw', version: '1' },
          },
        }),
      });
      assert.equal(response.status, 200);
      await response.text();
      return response.headers.get('mcp-session-id') as string;
    },
    call(session: string, name: string, id = 1, signal?: AbortSignal, args: object = {}): Promise<Response> {
      return fetch(url, {
        method: 'POST',
        headers: headers(session),
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
        ...(signal && { signal }),
      });
    },
    resume(session: string, lastEventId: string): Promise<Response> {
      const { 'content-type': _, ...get } = headers(session);
      return fetch(url, { headers: { ...get, accept: 'text/event-stream', 'last-event-id': lastEventId } });
    },
    end(session: string): Promise<Response> {
      const { 'content-type': _, ...bare } = headers(session);
      return fetch(url, { method: 'DELETE', headers: bare });
    },
  };
}
