/**
 * @module bench/servers/responder
 * The smallest MCP server logic the benchmarks need: `initialize`, `ping`, `tools/list` and a
 * `tools/call` of `echo`, answered from one function so the HTTP, WebSocket and stdio fixtures
 * behave identically and cost next to nothing (the proxy's own cost must dominate).
 */

type Json = Record<string, unknown>;

const SERVER_INFO = { name: 'bench-fast-upstream', version: '1.0.0' };
const ECHO_TOOL = {
  name: 'echo',
  description: 'Echoes the message back',
  inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
};

/** Answers one parsed JSON-RPC message; undefined for notifications and responses. */
export function respond(message: unknown): Json | undefined {
  if (typeof message !== 'object' || message === null) {
    return { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid Request' } };
  }
  const { id, method, params } = message as { id?: unknown; method?: unknown; params?: Json };
  if (typeof method !== 'string' || id === undefined) return undefined;
  switch (method) {
    case 'tools/call': {
      const args = (params?.arguments ?? {}) as { message?: unknown };
      if (params?.name !== 'echo') {
        return {
          jsonrpc: '2.0',
          id,
          error: { code: -32602, message: `Unknown tool: ${String(params?.name)}` },
        };
      }
      return {
        jsonrpc: '2.0',
        id,
        result: { content: [{ type: 'text', text: `Echo: ${String(args.message)}` }] },
      };
    }
    case 'initialize':
      return {
        jsonrpc: '2.0',
        id,
        result: {
          protocolVersion:
            typeof params?.protocolVersion === 'string' ? params.protocolVersion : '2025-06-18',
          capabilities: { tools: {} },
          serverInfo: SERVER_INFO,
        },
      };
    case 'ping':
      return { jsonrpc: '2.0', id, result: {} };
    case 'tools/list':
      return { jsonrpc: '2.0', id, result: { tools: [ECHO_TOOL] } };
    default:
      return { jsonrpc: '2.0', id, error: { code: -32601, message: `Method not found: ${method}` } };
  }
}

/** Answers a message or a batch; undefined when nothing needs an answer (HTTP 202). */
export function respondAll(parsed: unknown): Json | Json[] | undefined {
  if (!Array.isArray(parsed)) return respond(parsed);
  const answers = parsed.map(respond).filter((a): a is Json => a !== undefined);
  return answers.length === 0 ? undefined : answers;
}
