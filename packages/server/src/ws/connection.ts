/**
 * @module ws/connection
 * One `/ws` socket bridged to one upstream: a JSON-RPC message per text frame both ways,
 * through the same session bridge as `/mcp`. The socket is its session's only sink, so
 * responses, notifications and server-initiated requests all arrive on it. Heartbeats close
 * dead peers; when the reader falls behind, reading upstream pauses (bounded queue).
 */
import type { FastifyBaseLogger } from 'fastify';
import WebSocket from 'ws';
import { ProxyError, toCloseFrame, toErrorReply } from '../errors.ts';
import { exceedsJsonDepth } from '../json-depth.ts';
import { isJsonRpcMessage, isRequest, type JsonRpcMessage, type JsonRpcResponse } from '../jsonrpc.ts';
import type { RateLimiter } from '../limits/rate-limiter.ts';
import { toolFilterFor } from '../policy/tool-filter.ts';
import { BridgeSession, type MessageSink } from '../sessions/bridge-session.ts';
import type { SessionStore } from '../sessions/store.ts';
import type { UpstreamConnector, UpstreamTarget } from '../upstream/connector.ts';

/** How often a paused connection checks whether its reader caught up. */
const DRAIN_POLL_MS = 20;
/** Frames that may wait for the upstream connection to open. */
const MAX_EARLY_FRAMES = 64;

/** Limits and collaborators of a connection. */
export interface WsConnectionDeps {
  readonly sessions: SessionStore<BridgeSession>;
  readonly connector: UpstreamConnector;
  readonly heartbeatMs: number;
  /** Bytes queued for the reader: above half, upstream reading pauses; above all, the socket closes. */
  readonly maxQueuedBytes: number;
  readonly logger: FastifyBaseLogger;
  readonly limiter: RateLimiter;
}

/** Who is connected to what. */
export interface WsPeer {
  readonly ownerId: string;
  readonly target: UpstreamTarget;
  readonly targetKey: string;
}

/** A bridged WebSocket connection. */
export class WsConnection {
  readonly #socket: WebSocket;
  readonly #peer: WsPeer;
  readonly #deps: WsConnectionDeps;
  readonly #ready: Promise<BridgeSession | undefined>;
  readonly #started = Date.now();
  #sessionId: string | undefined;
  #session: BridgeSession | undefined;
  #early = 0;
  #framesIn = 0;
  #framesOut = 0;
  #alive = true;
  #heartbeat: NodeJS.Timeout | undefined;
  #drainWatch: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(socket: WebSocket, peer: WsPeer, deps: WsConnectionDeps) {
    this.#socket = socket;
    this.#peer = peer;
    this.#deps = deps;
    // An exception here would be an unhandled rejection, which ends the process (issue 14, #1).
    socket.on('message', (data, isBinary) =>
      this.#onFrame(data, isBinary).catch(() => this.close(1011, 'internal error')),
    );
    socket.on('pong', () => {
      this.#alive = true;
    });
    socket.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    socket.on('error', () => {
      // Protocol errors (e.g. a frame over maxPayload) close the socket; 'close' reports it.
    });
    this.#heartbeat = setInterval(() => this.#beat(), deps.heartbeatMs);
    this.#heartbeat.unref();
    this.#ready = this.#open();
  }

  /** Closes the socket (e.g. 1001 at shutdown). */
  close(code: number, reason: string): void {
    if (this.#socket.readyState === WebSocket.OPEN) this.#socket.close(code, reason);
    else this.#socket.terminate();
  }

  async #open(): Promise<BridgeSession | undefined> {
    const { sessions, connector } = this.#deps;
    try {
      const { id, value } = await sessions.add(
        this.#peer.ownerId,
        async () =>
          new BridgeSession(
            this.#peer.targetKey,
            await connector.open(this.#peer.target),
            toolFilterFor(this.#peer.target),
          ),
        { expires: false },
      );
      this.#sessionId = id;
      this.#session = value;
      if (this.#closed) {
        await sessions.delete(id);
        return undefined;
      }
      value.attachStandalone(this.#sink);
      value.onClosed(() => {
        const { code, reason } = toCloseFrame(
          value.failure ?? new ProxyError('upstream_unreachable', 'The MCP server closed the connection.'),
        );
        this.close(code === 1011 ? 4502 : code, reason);
      });
      return value;
    } catch (error) {
      const { code, reason } = toCloseFrame(error);
      this.close(code, reason);
      return undefined;
    }
  }

  readonly #sink: MessageSink = {
    deliver: (message) => this.#send(message),
  };

  #send(message: JsonRpcMessage): boolean {
    const socket = this.#socket;
    if (socket.readyState !== WebSocket.OPEN) return false;
    const { maxQueuedBytes } = this.#deps;
    if (socket.bufferedAmount > maxQueuedBytes) {
      // The reader stopped reading even with upstream paused: give up rather than buffer on.
      this.close(1013, 'reader too slow: the outbound queue is full');
      return false;
    }
    this.#framesOut++;
    socket.send(JSON.stringify(message));
    if (socket.bufferedAmount > maxQueuedBytes / 2 && !this.#drainWatch) this.#pauseUpstream();
    return true;
  }

  /**
   * Stops reading upstream until the reader has drained most of what is queued. `ws` has no
   * drain event, so the queue is polled while paused (only then).
   */
  #pauseUpstream(): void {
    const upstream = this.#session?.upstream;
    if (!upstream) return;
    upstream.pause();
    this.#drainWatch = setInterval(() => {
      if (
        this.#socket.readyState !== WebSocket.OPEN ||
        this.#socket.bufferedAmount < this.#deps.maxQueuedBytes / 4
      ) {
        clearInterval(this.#drainWatch);
        this.#drainWatch = undefined;
        upstream.resume();
      }
    }, DRAIN_POLL_MS);
    this.#drainWatch.unref();
  }

  async #onFrame(data: WebSocket.RawData, isBinary: boolean): Promise<void> {
    this.#framesIn++;
    if (isBinary) {
      this.close(1003, 'binary frames are not supported: send JSON-RPC messages as text');
      return;
    }
    const text = data.toString();
    if (exceedsJsonDepth(text)) {
      this.#sendError(new ProxyError('json_too_deep'), null);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.#sendError(new ProxyError('parse_error', 'Parse error: the frame is not valid JSON.'), null);
      return;
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    if (messages.length === 0 || !messages.every(isJsonRpcMessage)) {
      const id = (parsed as { id?: unknown } | null)?.id;
      this.#sendError(
        new ProxyError('invalid_message'),
        typeof id === 'string' || typeof id === 'number' ? id : null,
      );
      return;
    }
    if (!this.#session && ++this.#early > MAX_EARLY_FRAMES) {
      this.#sendError(
        new ProxyError('session_limit', 'Too many messages before the upstream connection opened.'),
        null,
      );
      return;
    }
    try {
      await this.#deps.limiter.consume('wsMessagesPerToken', this.#peer.ownerId);
    } catch (error) {
      const id = (messages[0] as { id?: unknown }).id;
      this.#sendError(error, typeof id === 'string' || typeof id === 'number' ? id : null);
      return;
    }
    const session = await this.#ready;
    if (!session) return;
    for (const message of messages as JsonRpcMessage[]) {
      if (isRequest(message)) {
        session.request(message, this.#sink).catch((error: unknown) => this.#sendError(error, message.id));
      } else {
        session.send(message).catch((error: unknown) => this.#sendError(error, null));
      }
    }
  }

  #sendError(error: unknown, id: string | number | null): void {
    this.#send(toErrorReply(error, id).body as JsonRpcResponse);
  }

  #beat(): void {
    if (!this.#alive) {
      this.#socket.terminate();
      return;
    }
    this.#alive = false;
    this.#socket.ping();
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#drainWatch);
    if (this.#sessionId) void this.#deps.sessions.delete(this.#sessionId);
    this.#deps.logger.info(
      {
        ws: true,
        target: this.#peer.targetKey.startsWith('stdio:')
          ? this.#peer.targetKey
          : URL.parse(this.#peer.targetKey)?.host,
        code,
        reason,
        framesIn: this.#framesIn,
        framesOut: this.#framesOut,
        durationMs: Date.now() - this.#started,
      },
      'websocket closed',
    );
  }
}
