/**
 * @module surfaces/ws/connection
 * One `/ws` socket tied to one upstream: a JSON-RPC message per text frame both ways,
 * through a held session, as `/mcp` uses. The socket is its session's only sink, so
 * responses, notifications and server-initiated requests all arrive on it. Heartbeats close
 * dead peers; when the reader falls behind, reading upstream pauses (bounded queue). Frames
 * that arrive while the upstream connection opens wait as raw bytes (bounded in bytes and
 * frames), and each request takes an in-flight slot until its answer goes out. The other way,
 * messages for the upstream go through an outbox bounded in bytes and messages, with a few
 * sends in flight at once: when the upstream stops taking them, reading the caller's socket
 * pauses, and a caller that keeps sending anyway is closed (issue 14 review, F1). The outbox
 * lives in outbox.ts, the reading of a frame's messages in frame-messages.ts, the writing to
 * the caller in socket-writer.ts, the requests in flight in requests-in-flight.ts and the
 * messages' trace spans in message-spans.ts.
 */
import type { FastifyBaseLogger } from 'fastify';
import WebSocket from 'ws';
import type { UpstreamTarget } from '../../dispatch/connector.ts';
import type { HeldSessions } from '../../dispatch/held-sessions.ts';
import {
  type CloseFrame,
  findProxyError,
  ProxyError,
  SOCKET_CLOSES,
  toCloseFrame,
  toJsonRpcError,
} from '../../errors.ts';
import type { RequestAudit } from '../../identity/audit-trail.ts';
import {
  cancelledRequestId,
  isRequest,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcRequest,
} from '../../jsonrpc.ts';
import type { RateLimiter } from '../../limits/rate-limiter.ts';
import type { Carrier, ProxySpan, Tracing } from '../../observability/tracing.ts';
import { isRequestAsNotification } from '../../policy/grants.ts';
import { type ToolFilter, toolFilterFor } from '../../policy/tool-filter.ts';
import type { HeldSession, MessageSink } from '../../sessions/held-session.ts';
import type { SessionStore } from '../../sessions/store.ts';
import type { VirtualPoolTarget, VirtualSessions } from '../../virtual/virtual-session.ts';
import { authFailure, type BrokeredCredential, isAuthRefusal } from './brokered-credential.ts';
import { EarlyFrames } from './early-frames.ts';
import { frameMessages, readableId } from './frame-messages.ts';
import { endClosed, WsMessageSpans } from './message-spans.ts';
import { UpstreamOutbox } from './outbox.ts';
import { type RequestCaps, RequestsInFlight } from './requests-in-flight.ts';
import { SocketWriter } from './socket-writer.ts';
import { openSocketSession } from './virtual-socket.ts';

/** Messages the outbox may hold: above half, reading the caller pauses; above all, it is closed. */
const OUTBOX_MESSAGES = 1_024;

/** Limits and collaborators of a connection (the in-flight caps: requests-in-flight.ts). */
export interface WsConnectionDeps extends BrokeredCredential, Omit<RequestCaps, 'ownerId'> {
  readonly sessions: SessionStore<HeldSession>;
  readonly held: HeldSessions;
  readonly heartbeatMs: number;
  /** Bytes queued for the reader: above half, upstream reading pauses; above all, the socket closes. */
  readonly maxQueuedBytes: number;
  readonly logger: FastifyBaseLogger;
  readonly limiter: RateLimiter;
  /** Messages one frame (a JSON-RPC batch) may hold. */
  readonly maxBatchMessages: number;
  /** The socket's audit recorder, when the audit trail is on. */
  readonly audit?: RequestAudit | undefined;
  /** A server span per inbound message (issue 21; off: nothing). */
  readonly tracing?: Tracing | undefined;
  /** Virtual servers' sessions, for sockets that name one. */
  readonly virtual?: VirtualSessions | undefined;
}

/** Who is connected to what. */
export interface WsPeer {
  readonly ownerId: string;
  /** A configured or caller-named server, or a virtual server (surfaces/ws/virtual-socket.ts). */
  readonly target: UpstreamTarget | VirtualPoolTarget;
  readonly targetKey: string;
  /** The principal's rate class (its grants), if any. */
  readonly rateClass?: string | undefined;
  /** The trace context the handshake carried (message-spans.ts). */
  readonly trace?: Carrier | undefined;
}

/** A WebSocket connection and its held session. */
export class WsConnection {
  readonly #socket: WebSocket;
  readonly #peer: WsPeer;
  readonly #deps: WsConnectionDeps;
  /**
   * The socket's principal's tool allowlist on its target, as resolved at the handshake: the
   * socket's credential never changes, and a reload that changes its grant ends the socket.
   */
  readonly #filter: ToolFilter | undefined;
  readonly #started = Date.now();
  #sessionId: string | undefined;
  #session: HeldSession | undefined;
  /** Raw frames waiting for the upstream connection. */
  readonly #early = new EarlyFrames();
  /** This socket's requests until their answer goes out: slots and spans (requests-in-flight.ts). */
  readonly #requests: RequestsInFlight;
  /** What goes to the caller, paced by its reading (socket-writer.ts). */
  readonly #writer: SocketWriter;
  /** Messages on their way upstream with their spans, bounded (surfaces/ws/outbox.ts). */
  readonly #outbox = new UpstreamOutbox<HeldSession, ProxySpan>({
    request: (session, message, span) => this.#request(session, message, true, span),
    send: (session, message, span) =>
      session.send(message).then(
        () => span?.end(),
        (error: unknown) => {
          span?.end(codeOf(error));
          this.#sendError(error, null);
        },
      ),
    drained: () => this.#maybeResumeReading(),
  });
  /** The server span of each inbound message, while tracing is on (message-spans.ts). */
  readonly #spans: WsMessageSpans | undefined;
  /** Bytes of frames received and not yet handled (they are on their way to the outbox). */
  #arrivingBytes = 0;
  #readingPaused = false;
  /** Heartbeats seen in a row while reading was paused. */
  #pausedBeats = 0;
  #framesIn = 0;
  #alive = true;
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(socket: WebSocket, peer: WsPeer, deps: WsConnectionDeps) {
    this.#socket = socket;
    this.#peer = peer;
    this.#filter = toolFilterFor(peer.target);
    this.#deps = deps;
    this.#spans = WsMessageSpans.of(deps.tracing, { ...peer, tools: peer.target.tools });
    this.#requests = new RequestsInFlight({ ...deps, ownerId: peer.ownerId });
    this.#writer = new SocketWriter(socket, {
      maxQueuedBytes: deps.maxQueuedBytes,
      upstream: () => this.#session?.upstream,
      tooSlow: () => this.close(SOCKET_CLOSES.reader_too_slow),
    });
    socket.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
    socket.on('pong', () => {
      this.#alive = true;
    });
    socket.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    socket.on('error', () => {
      // Protocol errors (e.g. a frame over maxPayload) close the socket; 'close' reports it.
    });
    this.#heartbeat = setInterval(() => this.#beat(), deps.heartbeatMs);
    this.#heartbeat.unref();
    void this.#open();
  }

  /** Proxy-token identity that opened this connection. */
  get ownerId(): string {
    return this.#peer.ownerId;
  }

  /** What the socket's upstream is keyed by (a URL, `server:<name>` or `stdio:<name>`). */
  get targetKey(): string {
    return this.#peer.targetKey;
  }

  /** Closes the socket (e.g. 1001 at shutdown). */
  close({ code, reason }: CloseFrame): void {
    if (this.#socket.readyState === WebSocket.OPEN) this.#socket.close(code, reason);
    // A closing socket keeps the first close frame: terminating now could drop it unsent.
    else if (this.#socket.readyState !== WebSocket.CLOSING) this.#socket.terminate();
  }

  async #open(): Promise<void> {
    const { sessions, held } = this.#deps;
    try {
      // Its life is the socket's: never idled out.
      const { id, session: value } = await openSocketSession(held, this.#deps.virtual, this.#peer);
      this.#sessionId = id;
      this.#session = value;
      if (this.#closed) {
        await sessions.delete(id);
        return;
      }
      value.attachStandalone(this.#sink);
      value.onClosed(() => {
        const failure =
          value.failure ?? new ProxyError('upstream_unreachable', 'The MCP server closed the connection.');
        this.close(toCloseFrame(failure, 'upstream'));
      });
      // In arrival order, before any later frame (those run in later events).
      for (const { raw, release, at } of this.#early.take()) {
        release();
        this.#handleSafely(raw, at);
      }
    } catch (error) {
      this.#dropEarly();
      const failure = await authFailure(this.#deps, error);
      // The sign-in link travels in an error frame: a close reason has no room for it.
      if (failure !== error) this.#sendError(failure, null, false);
      this.close(toCloseFrame(failure));
    }
  }

  readonly #sink: MessageSink = {
    deliver: (message) => this.#send(message),
  };

  #send(message: JsonRpcMessage, endsRequest = true, errorCode?: string): boolean {
    // The answer ends the request, delivered or not: its slot is free again.
    if (endsRequest && isResponse(message) && message.id !== null) {
      this.#requests.answered(message.id, errorCode);
      this.#deps.audit?.answer(message);
    }
    return this.#writer.write(message);
  }

  #onFrame(data: WebSocket.RawData, isBinary: boolean): void {
    this.#framesIn++;
    // A closing socket (e.g. closed for flooding) takes nothing more.
    if (this.#socket.readyState !== WebSocket.OPEN) return void this.#spans?.closed(WsMessageSpans.now());
    if (isBinary) {
      this.close(SOCKET_CLOSES.binary_frame);
      return;
    }
    const raw = Buffer.isBuffer(data) ? data : Buffer.from(data.toString());
    const at = this.#spans === undefined ? 0 : WsMessageSpans.now();
    if (!this.#early.waiting) {
      this.#handleSafely(raw, at);
      return;
    }
    try {
      this.#early.keep(raw, () => this.#deps.inFlight.acquire(this.#peer.ownerId), at);
    } catch (error) {
      this.#spans?.refused(codeOf(error), at);
      this.#sendError(error, null);
    }
  }

  /** Handles a frame; an exception would be an unhandled rejection, which ends the process (issue 14, #1). */
  #handleSafely(raw: Buffer, at: number): void {
    this.#arrivingBytes += raw.length;
    if (!this.#admitInbound(raw.length)) return;
    this.#handle(raw, at)
      .catch(() => this.close(SOCKET_CLOSES.internal))
      .finally(() => {
        this.#arrivingBytes -= raw.length;
        this.#maybeResumeReading();
      });
  }

  /**
   * Watches what waits to go upstream: above half the bound, reading the caller pauses (its
   * frames stay in the kernel and its sends block); above the bound (frames read before the
   * pause took effect, or a peer ignoring flow control), the socket closes 1013. One frame is
   * always taken.
   */
  #admitInbound(frameBytes: number): boolean {
    const { maxQueuedBytes } = this.#deps;
    const bytes = this.#outbox.bytes + this.#arrivingBytes;
    if ((bytes > maxQueuedBytes && bytes > frameBytes) || this.#outbox.length > OUTBOX_MESSAGES) {
      this.#arrivingBytes -= frameBytes;
      // Reading again lets the close handshake complete; frames read meanwhile are dropped.
      this.#socket.resume();
      this.close(SOCKET_CLOSES.inbound_full);
      return false;
    }
    if (!this.#readingPaused && (bytes > maxQueuedBytes / 2 || this.#outbox.length > OUTBOX_MESSAGES / 2)) {
      this.#readingPaused = true;
      this.#socket.pause();
    }
    return true;
  }

  #closePaused(): void {
    this.#socket.resume();
    this.close(SOCKET_CLOSES.upstream_stalled);
  }

  #maybeResumeReading(): void {
    if (!this.#readingPaused || this.#closed) return;
    const bytes = this.#outbox.bytes + this.#arrivingBytes;
    if (bytes > this.#deps.maxQueuedBytes / 4 || this.#outbox.length > OUTBOX_MESSAGES / 4) return;
    this.#readingPaused = false;
    this.#pausedBeats = 0;
    this.#alive = true; // Its pongs went unread while paused.
    this.#socket.resume();
  }

  async #handle(data: Buffer, at: number): Promise<void> {
    try {
      // /ws frames are new work as HTTP bodies are: shed them too while the heap is nearly full.
      this.#deps.inFlight.assertHeapRoom(false);
    } catch (error) {
      this.#spans?.refused(codeOf(error), at);
      this.#sendError(error, null);
      return;
    }
    const messages = frameMessages(data.toString(), this.#deps.maxBatchMessages);
    if (!Array.isArray(messages)) {
      this.#spans?.refused(codeOf(messages.error), at);
      this.#sendError(messages.error, messages.id);
      return;
    }
    try {
      await this.#deps.limiter.consume('wsMessagesPerToken', this.#peer.ownerId, this.#peer.rateClass);
    } catch (error) {
      this.#spans?.refused(codeOf(error), at, messages);
      this.#sendError(error, readableId(messages[0]));
      return;
    }
    const ended = await this.#deps.freshen?.();
    if (ended !== undefined) {
      this.#spans?.refused(ended.code, at, messages);
      for (const message of messages) {
        if (isRequest(message)) this.#sendError(ended, message.id, false);
      }
      this.close(toCloseFrame(ended));
      return;
    }
    const session = this.#session;
    if (!session || this.#closed) return void this.#spans?.closed(at, messages);
    for (const message of messages) this.#forward(session, message, this.#spans?.start(message, at));
  }

  /** Sends one message of a frame on (or refuses it), with its span. */
  #forward(session: HeldSession, message: JsonRpcMessage, span: ProxySpan | undefined): void {
    if (isRequest(message)) {
      // The refusal must not free the slot (nor end the span) of the request in flight under that id.
      const refusal = this.#requests.has(message.id) ? new ProxyError('request_id_in_use') : undefined;
      if (refusal) this.#deps.audit?.refuseNow(message, refusal);
      else this.#deps.audit?.add(message);
      const refused = refusal ?? this.#requests.admit(message.id, span);
      if (refused) {
        span?.end(refused.code);
        this.#sendError(refused, message.id, refusal === undefined);
        return;
      }
      this.#outbox.push(session, message, span);
    } else if (isRequestAsNotification(message)) {
      // Never forwarded: the grant and the audit judge requests (policy/grants.ts).
      if ('method' in message) this.#deps.audit?.dropped(message);
      span?.end();
    } else {
      // A cancelled request gets no answer (the MCP spec): its slot is free now.
      const cancelled = cancelledRequestId(message);
      if (cancelled !== undefined) {
        this.#requests.cancelled(cancelled);
        this.#deps.audit?.cancelled(cancelled);
      }
      this.#outbox.push(session, message, span);
    }
  }

  /**
   * Sends a request upstream, under its span (which its answer ends); a 401 the broker can
   * answer with a newer token retries it once.
   */
  #request(session: HeldSession, message: JsonRpcRequest, mayRetry: boolean, span?: ProxySpan): void {
    const sent =
      span === undefined
        ? session.request(message, this.#sink, this.#filter)
        : span.run(() => session.request(message, this.#sink, this.#filter));
    sent.catch(async (error: unknown) => {
      const refusal = findProxyError(error);
      if (mayRetry && refusal?.status === 401 && isAuthRefusal(refusal) && !this.#closed) {
        if (await this.#deps.renewed?.()) {
          this.#request(session, message, false, span);
          return;
        }
      }
      this.#sendError(error, message.id);
    });
  }

  #sendError(error: unknown, id: string | number | null, endsRequest = true): void {
    const refusal = findProxyError(error);
    if (this.#deps.authRequired && isAuthRefusal(refusal)) {
      // The broker's sign-in link instead of the upstream's refusal (it never rejects).
      void authFailure(this.#deps, error).then((failure) =>
        this.#send(toJsonRpcError(failure, id), endsRequest, codeOf(failure)),
      );
      return;
    }
    this.#send(toJsonRpcError(error, id), endsRequest, codeOf(error));
  }

  #beat(): void {
    const ended = this.#deps.ended;
    if (ended !== undefined) {
      void ended().then((error) => {
        if (error !== undefined && !this.#closed) this.close(toCloseFrame(error));
      });
    }
    if (this.#readingPaused) {
      // Unread, the peer's pongs cannot count; but an upstream that takes nothing for two
      // beats in a row holds the socket for nothing.
      if (++this.#pausedBeats >= 2) this.#closePaused();
      return;
    }
    this.#pausedBeats = 0;
    if (!this.#alive) {
      this.#socket.terminate();
      return;
    }
    this.#alive = false;
    this.#socket.ping();
  }

  /** Frames still waiting for the upstream connection, which will not come: dropped. */
  #dropEarly(): void {
    for (const { release, at } of this.#early.take()) {
      release();
      this.#spans?.closed(at);
    }
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#writer.close();
    this.#dropEarly();
    // Requests still unanswered end with the socket.
    this.#requests.close();
    this.#deps.audit?.finish(undefined, 'closed');
    for (const span of this.#outbox.close()) endClosed(span);
    if (this.#sessionId) void this.#deps.sessions.delete(this.#sessionId);
    this.#deps.logger.info(
      {
        ws: true,
        target: /^(stdio|server|virtual):/.test(this.#peer.targetKey)
          ? this.#peer.targetKey
          : URL.parse(this.#peer.targetKey)?.host,
        code,
        reason,
        framesIn: this.#framesIn,
        framesOut: this.#writer.frames,
        durationMs: Date.now() - this.#started,
      },
      'websocket closed',
    );
  }
}

/** The registry's code of an error a caller is answered with (anything else is internal). */
function codeOf(error: unknown): string {
  return findProxyError(error)?.code ?? 'internal_error';
}
