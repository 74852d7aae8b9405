/**
 * @module upstream/one-shot
 * One message to a Streamable HTTP upstream and its answer, with no proxy state: the caller
 * carries the upstream session id and protocol version.
 */
import {
  isRequest,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../jsonrpc.ts';
import type { ParamHeaderCatalog } from '../protocol/param-headers.ts';
import { RequestCorrelator } from './exchange.ts';
import type { UpstreamHttp } from './http.ts';
import { StreamableHttpTransport } from './streamable-http.ts';

/** One exchange. */
export interface OneShotRequest {
  readonly url: URL;
  readonly bearerToken?: string | undefined;
  readonly sessionId?: string | undefined;
  readonly protocolVersion?: string | undefined;
  /** Caller headers forwarded as they are (`Mcp-Param-*`). */
  readonly forwardHeaders?: Readonly<Record<string, string>> | undefined;
  readonly message: JsonRpcRequest | JsonRpcNotification;
  readonly timeoutMs: number;
  readonly paramHeaders?: ParamHeaderCatalog | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** What came back. */
export interface OneShotResult {
  /** Absent for a notification. */
  readonly response: JsonRpcResponse | undefined;
  readonly sessionId: string | undefined;
  readonly protocolVersion: string | undefined;
}

/** Sends one message and waits for its answer (server requests meanwhile are refused). */
export async function exchangeOnce(http: UpstreamHttp, request: OneShotRequest): Promise<OneShotResult> {
  const transport = new StreamableHttpTransport({
    url: request.url,
    http,
    bearerToken: request.bearerToken,
    sessionId: request.sessionId,
    protocolVersion: request.protocolVersion,
    extraHeaders: request.forwardHeaders,
    paramHeaders: request.paramHeaders,
  });
  const correlator = new RequestCorrelator(transport, true);
  const { message, signal } = request;
  let response: JsonRpcResponse | undefined;
  if (isRequest(message))
    response = await correlator.request(message, { timeoutMs: request.timeoutMs, signal });
  else await correlator.notify(message, signal);
  return { response, sessionId: transport.sessionId, protocolVersion: transport.protocolVersion };
}
