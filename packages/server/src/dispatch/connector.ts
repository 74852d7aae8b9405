/**
 * @module dispatch/connector
 * Opens long-lived upstream connections for bridged sessions: one place that knows how each
 * kind of target (URL by transport, or a configured stdio server) becomes a started transport.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { StdioServerConfig } from '../config/config.ts';
import type { EgressGuard } from '../egress/types.ts';
import type { ProtocolChoice } from '../eras/classify.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { SessionCredential } from '../sessions/held-session.ts';
import type { ChildRegistry } from '../upstream/child-registry.ts';
import type { ReachTest, UpstreamHttp } from '../upstream/http.ts';
import type { ParamHeaderCatalog } from '../upstream/param-headers.ts';
import { StreamableHttpTransport } from '../upstream/streamable-http.ts';
import type { UpstreamTransport } from '../upstream/transport.ts';
import { learnModernOnly } from './answer-rules.ts';
import type { EraDetector, EraProbeTarget } from './era-detector.ts';
import type { TransportVerdicts } from './transport-verdicts.ts';

/** A resolved upstream: a vetted URL with its wire protocol, or a configured stdio server. */
export type UpstreamTarget =
  | {
      /** `http-auto`: Streamable HTTP or legacy SSE, decided on first use. */
      readonly kind: 'http-auto' | 'streamable-http' | 'sse' | 'websocket';
      readonly url: URL;
      readonly bearerToken?: string | undefined;
      /**
       * The OAuth broker's credential, read at each upstream request of a held session instead
       * of `bearerToken`: a refresh or a new sign-in replaces it (R5), a disconnect ends the
       * session (review6 OAUTH-1).
       */
      readonly credential?: SessionCredential | undefined;
      /** The configured server's name when the caller named one (not a raw URL). */
      readonly name?: string | undefined;
      /**
       * Where the upstream may send the proxy on to for this caller (redirect hops, an SSE
       * endpoint): set by dispatch/targets.ts when a URL grant judges the caller's reach.
       */
      readonly mayReach?: ReachTest | undefined;
      /**
       * With `mayReach`: the digest of the URL grant it judges by. A held or pooled session
       * records it, and serves only callers with the same (sessions/session-reach.ts).
       */
      readonly urlGrant?: string | undefined;
      /** The tools the caller may use: the server's allowlist narrowed by its grants, if any. */
      readonly tools?: readonly string[] | undefined;
      /** The era the operator pinned for this server (`auto` or absent: learnt). */
      readonly protocol?: ProtocolChoice | undefined;
    }
  | {
      readonly kind: 'stdio';
      readonly name: string;
      readonly server: StdioServerConfig;
      readonly tools?: readonly string[] | undefined;
      readonly protocol?: ProtocolChoice | undefined;
    };

/** What the connector needs. */
export interface ConnectorDeps {
  readonly guard: EgressGuard;
  readonly http: UpstreamHttp;
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly responseLimitBytes: number;
  readonly verdicts: TransportVerdicts;
  /** Learns `x-mcp-header` declarations so body-only callers' calls get their headers. */
  readonly paramHeaders?: ParamHeaderCatalog;
  /** Which era each upstream speaks; bridges clients of the other era when set. */
  readonly eras?: EraDetector;
  /** How long a bridged call waits for a modern client's input round. */
  readonly inputDeadlineMs?: number;
  /** Where stdio children are registered, so a forced exit can kill them. */
  readonly children?: ChildRegistry;
  /** This instance's tag in `requestState` handles: a retry elsewhere is relayed here (issue 19). */
  readonly handleTag?: string | undefined;
  /** Set only while tracing is on: messages to WebSocket and stdio upstreams carry its context (issue 21). */
  readonly tracing?: Tracing | undefined;
}

/** Turns targets into started transports. */
export class UpstreamConnector {
  readonly #deps: ConnectorDeps;

  constructor(deps: ConnectorDeps) {
    this.#deps = deps;
  }

  /** Opens and starts a transport for `target`. */
  async open(target: UpstreamTarget): Promise<UpstreamTransport> {
    const transport = await this.#transportFor(target);
    const eras = this.#deps.eras;
    const bridged = eras ? await this.#eraSwitch(target, transport, eras) : transport;
    await bridged.start();
    return bridged;
  }

  /**
   * The (not yet started) transport that speaks `target`'s wire protocol. Each is loaded with
   * the first session that needs it (issue #16: a proxy that only passes requests through, the
   * default, never loads the held-session transports, the era bridge or node:child_process).
   */
  async #transportFor(target: UpstreamTarget): Promise<UpstreamTransport> {
    const { guard, logger, timeoutMs, responseLimitBytes, verdicts, paramHeaders, children } = this.#deps;
    if (target.kind === 'stdio') {
      const { StdioTransport } = await import('../upstream/stdio.ts');
      return new StdioTransport({
        name: target.name,
        server: target.server,
        logger,
        maxLineBytes: responseLimitBytes,
        ...(children ? { children } : {}),
        tracing: this.#deps.tracing,
      });
    }
    const http = this.#deps.http.reaching(target.mayReach);
    // Every URL transport is reached the same way: the vetted URL, with the target's token.
    const reach = { url: target.url, bearerToken: target.credential?.bearer ?? target.bearerToken };
    switch (target.kind) {
      case 'websocket': {
        const { WebSocketTransport } = await import('../upstream/websocket.ts');
        return new WebSocketTransport({
          ...reach,
          guard,
          maxPayloadBytes: responseLimitBytes,
          handshakeTimeoutMs: timeoutMs,
          tracing: this.#deps.tracing,
        });
      }
      case 'sse': {
        const { SseTransport } = await import('../upstream/sse.ts');
        return new SseTransport({ ...reach, http, handshakeTimeoutMs: timeoutMs });
      }
      case 'streamable-http':
        return new StreamableHttpTransport({ ...reach, http, longLived: true, paramHeaders });
      case 'http-auto': {
        const { AutoHttpTransport } = await import('./auto-http.ts');
        return new AutoHttpTransport({
          ...reach,
          http,
          verdicts,
          handshakeTimeoutMs: timeoutMs,
          paramHeaders,
        });
      }
    }
  }

  /** The era (and its detection) of a target, as the era detector sees it. */
  static eraTarget(target: UpstreamTarget): EraProbeTarget {
    if (target.kind === 'stdio') return { key: `stdio:${target.name}`, protocol: target.protocol };
    // Per credential too: what a server answers one caller's token (a 400 for a malformed one,
    // say) must not decide what every other caller gets.
    const credential = target.bearerToken
      ? `#${createHash('sha256').update(target.bearerToken).digest('base64url').slice(0, 22)}`
      : '';
    return {
      key: target.url.href + credential,
      url: target.url,
      bearerToken: target.bearerToken,
      protocol: target.protocol,
      mayReach: target.mayReach,
    };
  }

  async #eraSwitch(
    target: UpstreamTarget,
    native: UpstreamTransport,
    eras: EraDetector,
  ): Promise<UpstreamTransport> {
    const { EraSwitch } = await import('../eras/era-switch.ts');
    const { timeoutMs, paramHeaders } = this.#deps;
    const probeTarget = UpstreamConnector.eraTarget(target);
    // The 2024-11-05 SSE transport predates the modern era: such a server is legacy by definition.
    const sessionOnly = target.kind === 'sse';
    return new EraSwitch({
      native,
      supportsModern: async () => (sessionOnly ? false : eras.supportsModern(probeTarget)),
      probeInBand: target.kind === 'stdio' || target.kind === 'websocket',
      learnModern: (supported) => eras.learn(probeTarget, 'modern', supported),
      modernOnly: () => !sessionOnly && eras.known(probeTarget).session === false,
      learnModernOnly: () => learnModernOnly(eras, probeTarget),
      modernTransport: (current) =>
        target.kind === 'http-auto' || target.kind === 'streamable-http'
          ? new StreamableHttpTransport({
              url: target.url,
              http: this.#deps.http.reaching(target.mayReach),
              bearerToken: target.credential?.bearer ?? target.bearerToken,
              paramHeaders,
            })
          : current,
      inputDeadlineMs: this.#deps.inputDeadlineMs ?? timeoutMs,
      timeoutMs,
      handleTag: this.#deps.handleTag,
    });
  }
}
