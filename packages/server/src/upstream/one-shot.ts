/**
 * @module upstream/one-shot
 * One message to a Streamable HTTP upstream and its answer, with no proxy state: the caller
 * carries the upstream session id and protocol version.
 *
 * This is the hot path of `POST /proxy`, so it is one POST and one read, without the transport,
 * correlator and flow-gate objects a held session needs (issue #10). It behaves as
 * {@link StreamableHttpTransport} + {@link RequestCorrelator} do: a 4xx carrying a JSON-RPC error
 * for the request is its answer; an event stream is read until the response with the request's
 * id (the rest of the stream is not read); server-initiated requests on it are refused
 * with -32601, a few at a time, and too many fail the call (see {@link ServerRequestRefusals}); a request that times out or whose caller leaves is cancelled upstream with
 * `notifications/cancelled`. A modern `tools/call` whose `Mcp-Param-*` headers may first need a
 * `tools/list` lookup goes through the transport, which owns that lookup.
 */

import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from '../jsonrpc.ts';
import { cancelledNotice, initializeResultVersion, isRequest, isResponse } from '../jsonrpc.ts';
import { readAnswer } from './answer.ts';
import { abandonedRequest, abandonReason, asProxyError, RequestCorrelator } from './correlator.ts';
import { upstreamHeaders } from './headers.ts';
import { discard, type UpstreamHttp, type UpstreamResponse } from './http.ts';
import type { ParamHeaderCatalog } from './param-headers.ts';
import { declaredVersion, isModernVersion, metadataHeaders } from './request-metadata.ts';
import { refuseForProxyCaller, ServerRequestRefusals } from './server-request-refusals.ts';
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
export async function callOnce(http: UpstreamHttp, request: OneShotRequest): Promise<OneShotResult> {
  if (mayNeedToolLookup(request)) return viaTransport(http, request);
  return new OneShot(http, request).run();
}

/** A modern tools/call the catalog may have to look up first (the transport does that). */
function mayNeedToolLookup({ paramHeaders, message }: OneShotRequest): boolean {
  return (
    paramHeaders !== undefined &&
    message.method === 'tools/call' &&
    typeof message.params?.name === 'string' &&
    isModernVersion(declaredVersion(message))
  );
}

async function viaTransport(http: UpstreamHttp, request: OneShotRequest): Promise<OneShotResult> {
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
  try {
    if (isRequest(message))
      response = await correlator.request(message, { timeoutMs: request.timeoutMs, signal });
    else await correlator.notify(message, signal);
  } finally {
    correlator.dispose();
  }
  return { response, sessionId: transport.sessionId, protocolVersion: transport.protocolVersion };
}

/** Called with each message the upstream sent that is a response. */
type OnResponse = (response: JsonRpcResponse) => void;

/** The state of one exchange: what the upstream said about its session along the way. */
class OneShot {
  readonly #http: UpstreamHttp;
  readonly #request: OneShotRequest;
  #sessionId: string | undefined;
  #protocolVersion: string | undefined;
  /**
   * Aborted when the exchange is over: refusals still in flight end with it. Made with the first
   * refusal: few calls see a server request, and an aborted controller costs an event per call.
   */
  #done: AbortController | undefined;
  #refusals: ServerRequestRefusals | undefined;
  #over = false;
  /** The answer to the call, while it is being read: dropped when the deadline passes. */
  #reading: UpstreamResponse | undefined;

  constructor(http: UpstreamHttp, request: OneShotRequest) {
    this.#http = http;
    this.#request = request;
    this.#sessionId = request.sessionId;
    this.#protocolVersion = request.protocolVersion;
  }

  async run(): Promise<OneShotResult> {
    const { message, signal } = this.#request;
    let response: JsonRpcResponse | undefined;
    try {
      if (isRequest(message)) response = await this.#call(message);
      else await this.#send(message, signal, undefined);
    } finally {
      this.#over = true;
      // A plain reason: an argument-less abort() builds a DOMException (a stack) per call.
      this.#done?.abort('call over');
    }
    return { response, sessionId: this.#sessionId, protocolVersion: this.#protocolVersion };
  }

  /**
   * Sends a request and resolves with its response, within the deadline. One answer, one timer,
   * and the caller's own signal handed to the HTTP client as it is: no correlator table, linked
   * controller or abort listener per call (issue 16; they were ~5% of this path's CPU). A caller
   * that leaves aborts the upstream request through that signal, and the failure it causes is
   * read as the caller's leaving; the deadline drops the answer being read (before its headers,
   * the HTTP client's own header timeout, as long as the deadline, ends the request).
   */
  async #call(message: JsonRpcRequest): Promise<JsonRpcResponse> {
    const { timeoutMs, signal } = this.#request;
    // A caller gone already: nothing went out yet, so there is nothing to cancel upstream.
    if (signal?.aborted) throw abandonedRequest(false, timeoutMs, signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<JsonRpcResponse>();
    let settled = false;
    const abandon = (timedOut: boolean) => {
      settled = true;
      reject(abandonedRequest(timedOut, timeoutMs, signal?.reason));
      this.#notify(cancelledNotice(message.id, abandonReason(timedOut)));
    };
    const deadline = setTimeout(() => {
      if (settled) return;
      abandon(true);
      if (this.#reading) discard(this.#reading);
    }, timeoutMs);
    deadline.unref();
    const onResponse: OnResponse = (response) => {
      if (settled || response.id !== message.id) return;
      settled = true;
      resolve(response);
    };
    // The whole answer is read before the send resolves: one that ended unanswered is an error.
    this.#send(message, signal, onResponse, true).then(
      () => {
        if (settled) return;
        settled = true;
        // Built only when needed: an error captures a stack, and most calls are answered.
        reject(
          new ProxyError('upstream_protocol_error', 'The MCP server ended its answer without a response.'),
        );
      },
      (error: unknown) => {
        if (settled) return;
        if (signal?.aborted) abandon(false);
        else {
          settled = true;
          reject(asProxyError(error));
        }
      },
    );
    try {
      return await promise;
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Sends a message of our own (a refusal, a cancellation); its fate does not matter. */
  #notify(message: JsonRpcMessage): void {
    this.#send(message, undefined, undefined).catch(() => {});
  }

  /**
   * POSTs one message and reads the whole answer, handing responses to `onResponse`; `call`
   * when it is the exchange's own request (its answer is what the deadline drops).
   */
  async #send(
    message: JsonRpcMessage,
    signal: AbortSignal | undefined,
    onResponse: OnResponse | undefined,
    call = false,
  ) {
    const http = this.#http;
    const response = await http.send(this.#request.url, {
      method: 'POST',
      headers: this.#headers(message),
      body: JSON.stringify(message),
      ...(signal ? { signal } : {}),
    });
    if (call) {
      // Past the deadline already: nobody reads this answer.
      if (this.#over) {
        discard(response);
        return;
      }
      this.#reading = response;
    }
    await readAnswer(response, {
      http,
      message,
      sessionId: this.#sessionId,
      signal,
      deliver: (messages) => this.#deliver(messages, onResponse),
      accepted: (issued) => {
        if (issued) this.#sessionId = issued;
      },
    });
  }

  /** Hands responses on, learns from results, and refuses what the server asks of us. */
  #deliver(messages: readonly JsonRpcMessage[], onResponse: OnResponse | undefined): void {
    // Only a 2026-07-28 `tools/list` answer can declare `x-mcp-header`s worth mirroring: other
    // answers carrying a `tools` array are not learnt from (issue 14 review, F3).
    const sent = this.#request.message;
    const catalog =
      sent.method === 'tools/list' && isModernVersion(declaredVersion(sent))
        ? this.#request.paramHeaders
        : undefined;
    for (const message of messages) {
      this.#protocolVersion = initializeResultVersion(message) ?? this.#protocolVersion;
      if ('result' in message) catalog?.learn(this.#request.url.href, message.result);
      if (isResponse(message)) onResponse?.(message);
      else if (isRequest(message)) this.#refuse(message);
      // Notifications have nobody to go to on a one-shot call.
    }
  }

  /**
   * A caller that cannot answer server requests must not leave the server waiting, but an
   * upstream that keeps asking gets a few answers, then the call fails (issue 14 review, F2).
   * The throw ends the event stream being read as this call's error.
   */
  #refuse(request: JsonRpcRequest): void {
    const tooMany = refuseForProxyCaller(this.#refusalsOf(), request);
    if (tooMany) throw tooMany;
  }

  #refusalsOf(): ServerRequestRefusals {
    if (this.#refusals === undefined) {
      const done = new AbortController();
      if (this.#over) done.abort('call over');
      this.#done = done;
      this.#refusals = new ServerRequestRefusals(
        (reply, signal) => this.#send(reply, signal, undefined),
        done.signal,
      );
    }
    return this.#refusals;
  }

  /** The POST's headers, as the Streamable HTTP transport sends them. */
  #headers(message: JsonRpcMessage): Record<string, string> {
    const { bearerToken, forwardHeaders } = this.#request;
    const parts = {
      accept: 'message',
      jsonBody: true,
      bearerToken,
      sessionId: this.#sessionId,
      protocolVersion: this.#protocolVersion,
    } as const;
    // A 2026-07-28 request carries its metadata in headers too; they must match the body.
    const metadata = isModernVersion(declaredVersion(message)) ? metadataHeaders(message) : undefined;
    return upstreamHeaders(parts, forwardHeaders, metadata);
  }
}
