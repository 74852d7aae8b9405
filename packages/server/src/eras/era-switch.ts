import { isResponse, type JsonRpcMessage, requestKey } from '../jsonrpc.ts';
import { type SendOptions, TransportCallbacks, type UpstreamTransport } from '../upstream/transport.ts';
import { clientEraOf, discoverProbe, isModernOnlyRefusal, modernSupportFromAnswer } from './classify.ts';
import { ModernEraFacade } from './modern-facade.ts';
import { SessionEraFacade } from './session-facade.ts';

/**
 * How long an in-band `server/discover` probe may go unanswered before this session treats the
 * server as session-era (a slow starter is probed again by the next session).
 */
const PROBE_TIMEOUT_MS = 10_000;

/** What the switch needs to decide. */
export interface EraSwitchOptions {
  /** The connection as the target's transport makes it (speaks whatever the client sends). */
  readonly native: UpstreamTransport;
  /** Does the upstream speak the modern era (config, cache, HTTP probe)? `undefined`: unknown. */
  supportsModern(): Promise<boolean | undefined>;
  /**
   * Probe over the connection itself when still unknown (stdio, WebSocket): `server/discover`
   * first, and any answer but a modern one (or none in time) means a session-era server.
   */
  readonly probeInBand: boolean;
  /** Records what an in-band probe found. */
  learnModern(supported: boolean): void;
  /** Is the upstream known to speak *only* the modern era? */
  modernOnly(): boolean;
  /** The upstream refused a session client the way a modern-only server does. */
  learnModernOnly(): void;
  /** A transport to the upstream for modern requests (`native` itself where it can carry them). */
  modernTransport(native: UpstreamTransport): UpstreamTransport;
  /** How long a call waits for a modern client's input round. */
  readonly inputDeadlineMs: number;
  readonly timeoutMs: number;
  /** This instance's tag in `requestState` handles (issue 19). */
  readonly handleTag?: string | undefined;
}

/** Chooses the translation on the first message, then forwards everything to it. */
export class EraSwitch extends TransportCallbacks implements UpstreamTransport {
  readonly #options: EraSwitchOptions;
  #active: UpstreamTransport;
  #choosing: Promise<void> | undefined;
  /** A session client's `initialize` whose refusal would reveal a modern-only server. */
  #watch: { key: string; answered: Promise<void>; settle: () => void; switched: boolean } | undefined;
  /** The in-band probe waiting for its answer. */
  #probe: { id: string; resolve: (message: JsonRpcMessage) => void } | undefined;

  constructor(options: EraSwitchOptions) {
    super();
    this.#options = options;
    this.#active = options.native;
    this.#wire(options.native);
  }

  get sessionId(): string | undefined {
    return this.#active.sessionId;
  }

  get protocolVersion(): string | undefined {
    return this.#active.protocolVersion;
  }

  get busy(): boolean {
    return this.#active.busy === true;
  }

  async start(): Promise<void> {
    await this.#options.native.start();
  }

  pause(): void {
    this.#active.pause();
  }

  resume(): void {
    this.#active.resume();
  }

  async close(): Promise<void> {
    await this.#active.close();
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    this.#choosing ??= this.#choose(message);
    await this.#choosing;
    const watch = this.#watch;
    if (!watch || !('id' in message) || !('method' in message) || requestKey(message.id) !== watch.key) {
      return this.#active.send(message, options);
    }
    try {
      await this.#active.send(message, options);
      // A stream pair (stdio, WebSocket) answers after send returns: wait for the answer.
      const timer = setTimeout(watch.settle, this.#options.timeoutMs);
      await watch.answered;
      clearTimeout(timer);
    } finally {
      this.#watch = undefined;
    }
    // The refusal was swallowed and the facade is in place: it answers the initialize.
    if (watch.switched) await this.#active.send(message, options);
  }

  async #choose(first: JsonRpcMessage): Promise<void> {
    const { native } = this.#options;
    if (clientEraOf(first) === 'modern') {
      let supported = await this.#options.supportsModern();
      if (supported === undefined && this.#options.probeInBand) {
        supported = await this.#probeInBand();
        // Only an answer is remembered: a slow start or a failed write decides this session alone.
        if (supported !== undefined) this.#options.learnModern(supported);
      }
      if (supported === false) {
        this.#use(
          new ModernEraFacade({
            inner: native,
            inputDeadlineMs: this.#options.inputDeadlineMs,
            timeoutMs: this.#options.timeoutMs,
            handleTag: this.#options.handleTag,
          }),
        );
      }
      return;
    }
    if (this.#options.modernOnly()) {
      this.#toSessionFacade();
      return;
    }
    if ('id' in first && 'method' in first && first.method === 'initialize') {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#watch = {
        key: requestKey(first.id),
        answered: promise,
        settle: () => resolve(),
        switched: false,
      };
    }
  }

  /** `server/discover` over the connection: true/false from an answer, undefined without one. */
  async #probeInBand(): Promise<boolean | undefined> {
    const id = `mcp-proxy-era-probe-${Date.now()}`;
    const { promise, resolve } = Promise.withResolvers<JsonRpcMessage | undefined>();
    this.#probe = { id, resolve };
    const timer = setTimeout(() => resolve(undefined), Math.min(this.#options.timeoutMs, PROBE_TIMEOUT_MS));
    timer.unref();
    try {
      await this.#options.native.send(discoverProbe(id));
      const answer = await promise;
      return answer === undefined ? undefined : modernSupportFromAnswer(200, answer) === true;
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
      this.#probe = undefined;
    }
  }

  #toSessionFacade(): void {
    const { native } = this.#options;
    const modern = this.#options.modernTransport(native);
    this.#use(new SessionEraFacade({ inner: modern }));
    // Only after the switch: the native connection's close must not end this one.
    if (modern !== native) void native.close().catch(() => {});
  }

  #use(transport: UpstreamTransport): void {
    this.#active = transport;
    this.#wire(transport);
  }

  #wire(transport: UpstreamTransport): void {
    transport.onmessage = (message) => {
      if (this.#probe && isResponse(message) && message.id === this.#probe.id) {
        this.#probe.resolve(message);
        return;
      }
      const watch = this.#watch;
      if (
        watch &&
        !watch.switched &&
        isResponse(message) &&
        message.id !== null &&
        requestKey(message.id) === watch.key
      ) {
        watch.settle();
        if ('error' in message && isModernOnlyRefusal(message)) {
          watch.switched = true;
          this.#options.learnModernOnly();
          this.#toSessionFacade();
          return;
        }
      }
      this.onmessage?.(message);
    };
    transport.onerror = (error) => {
      // A failed connection answers nothing more: the initialize being watched is over too.
      this.#watch?.settle();
      this.onerror?.(error);
    };
    transport.onclose = () => {
      // Closing the native connection on a switch is not the end of this one.
      if (transport === this.#active) this.onclose?.();
    };
  }
}
