/**
 * @module transport/http
 * The `http` transport: every JSON-RPC message is one `POST /proxy` carrying the envelope
 * (target, MCP token, JSON-RPC fields). The session is the `Mcp-Session-Id` and
 * `MCP-Protocol-Version` response headers, remembered and sent back as request headers.
 * No server-to-client messages arrive this way.
 */
import { MCPProxyError } from '../errors.ts';
import { isObject, parseJson } from '../json.ts';
import type { FetchLike, FetchResponse } from '../options.ts';
import type { JsonRpcNotification, JsonRpcRequest, JsonRpcResponse, RequestId } from '../types.ts';
import { refusal, unreachable } from './proxy-fetch.ts';
import type { ProxyTarget, SendOptions, SessionInfo, Transport } from './transport.ts';
import { proxyEndpoint } from './url.ts';

/** What the HTTP transport needs to know. */
export interface HttpTransportOptions extends ProxyTarget {
  readonly fetch: FetchLike;
}

/** A successful proxy answer: 200 with a body, or 202 without. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
}

/** Talks to the proxy with one `POST /proxy` per message. */
export class HttpTransport implements Transport {
  readonly streaming = false;
  readonly #options: HttpTransportOptions;
  readonly #endpoint: string;
  #sessionId: string | undefined;
  #protocolVersion: string | undefined;

  constructor(options: HttpTransportOptions) {
    this.#options = options;
    this.#endpoint = proxyEndpoint(options.proxyUrl, 'proxy').href;
  }

  get session(): SessionInfo {
    return { id: this.#sessionId, protocolVersion: this.#protocolVersion };
  }

  resetSession(): void {
    this.#sessionId = undefined;
    this.#protocolVersion = undefined;
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
  }

  async request(message: JsonRpcRequest, options: SendOptions): Promise<JsonRpcResponse> {
    const answer = await this.#post(message, options.signal);
    if (answer.body === undefined) {
      throw invalidResponse(`The proxy answered HTTP ${answer.status} without a body to a request.`);
    }
    return readResponse(answer.body, message.id);
  }

  async notify(message: JsonRpcNotification, options: SendOptions): Promise<void> {
    await this.#post(message, options.signal);
  }

  async close(): Promise<void> {
    // Nothing is held open: POST /proxy is one request per message. A streamable upstream
    // session ends when the MCP server expires it; a legacy SSE one after the proxy's idle timeout.
    this.resetSession();
  }

  async #post(message: JsonRpcRequest | JsonRpcNotification, signal: AbortSignal): Promise<Answer> {
    const options = this.#options;
    const envelope = {
      ...(options.server === undefined
        ? { mcp_server_url: options.mcpServerUrl }
        : { server: options.server }),
      ...(options.mcpToken === undefined ? {} : { mcp_token: options.mcpToken }),
      ...(options.upstreamTransport === undefined ? {} : { transport: options.upstreamTransport }),
      ...message,
    };
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'x-proxy-token': options.proxyToken,
    };
    if (this.#sessionId !== undefined) headers['mcp-session-id'] = this.#sessionId;
    if (this.#protocolVersion !== undefined) headers['mcp-protocol-version'] = this.#protocolVersion;

    let status: number;
    let text: string;
    let response: FetchResponse;
    try {
      response = await options.fetch(this.#endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify(envelope),
        signal,
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      throw unreachable(this.#endpoint, signal, error);
    }
    const requestId = response.headers.get('x-request-id') ?? undefined;
    if (!response.ok) throw refusal(response, text);
    const sessionId = response.headers.get('mcp-session-id');
    if (sessionId) this.#sessionId = sessionId;
    const protocolVersion = response.headers.get('mcp-protocol-version');
    if (protocolVersion) this.#protocolVersion = protocolVersion;
    if (text === '') return { status, body: undefined };
    const body = parseJson(text);
    if (body === undefined) {
      throw invalidResponse(
        `The proxy answered HTTP ${status} with a body that is not JSON.`,
        status,
        requestId,
      );
    }
    return { status, body };
  }
}

/** Checks a 200 body is the JSON-RPC response to the request with `id`. */
function readResponse(body: unknown, id: RequestId): JsonRpcResponse {
  if (!isObject(body) || body.jsonrpc !== '2.0') {
    throw invalidResponse('The proxy answered with something that is not a JSON-RPC response.');
  }
  const error = body.error;
  if (isObject(error) && typeof error.code === 'number' && typeof error.message === 'string') {
    return { jsonrpc: '2.0', id, error: { code: error.code, message: error.message, data: error.data } };
  }
  if (body.id !== id) {
    throw invalidResponse(`The response id ${JSON.stringify(body.id)} does not match the request id ${id}.`);
  }
  if (!isObject(body.result))
    throw invalidResponse('The JSON-RPC response has neither a result nor an error.');
  return { jsonrpc: '2.0', id, result: body.result };
}

function invalidResponse(message: string, status?: number, requestId?: string): MCPProxyError {
  return new MCPProxyError('invalid_response', message, {
    ...(status === undefined ? {} : { status }),
    ...(requestId === undefined ? {} : { requestId }),
  });
}
