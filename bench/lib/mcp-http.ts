/**
 * @module bench/lib/mcp-http
 * The few MCP exchanges the bench makes itself (outside the load generator): sanity checks,
 * and opening a session (initialize + notifications/initialized) whose id the load then uses.
 */

/** An answer, with its body read as text. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** POSTs a JSON body. */
export async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Throws unless the answer is a 2xx whose body contains `expected`. */
export function expectAnswer(what: string, answer: Answer, expected: string): void {
  if (answer.status < 200 || answer.status >= 300 || !answer.text.includes(expected)) {
    throw new Error(`${what}: unexpected answer ${answer.status}: ${answer.text.slice(0, 300)}`);
  }
}

/** The initialize request the bench's clients send. */
export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'mcp-proxy-bench', version: '1.0.0' },
  },
} as const;

/** The notification that completes the handshake. */
export const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' } as const;

/**
 * Opens an MCP session over Streamable HTTP at `url` (with extra `headers`) and returns its
 * id, as the server (or proxy) issued it.
 */
export async function openSession(url: string, headers: Record<string, string>): Promise<string> {
  const accept = { accept: 'application/json, text/event-stream', ...headers };
  const init = await post(url, accept, INITIALIZE);
  expectAnswer(`initialize at ${url}`, init, 'protocolVersion');
  const sessionId = init.headers.get('mcp-session-id');
  if (!sessionId) throw new Error(`initialize at ${url}: no Mcp-Session-Id in the answer`);
  const done = await post(
    url,
    { ...accept, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
    INITIALIZED,
  );
  if (done.status !== 202 && done.status !== 200) {
    throw new Error(`notifications/initialized at ${url}: ${done.status} ${done.text.slice(0, 200)}`);
  }
  return sessionId;
}
