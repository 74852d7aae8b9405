/**
 * @module dispatch/era-detector
 * Which protocol era(s) each upstream speaks, learnt once and remembered per URL for a while
 * (the spec: "the era determination is a property of the server"). Modern support is probed
 * the spec's way for HTTP: a modern request (`server/discover`) whose answer is read — success
 * or a recognized modern error means modern, any other 4xx means the session era. Session-era support is
 * learnt from how the server answers a session client's `initialize`. An operator can pin
 * either in the config (`protocol: modern | session`), and then nothing is probed.
 */
import { linkAbort } from '../abort.ts';
import {
  discoverProbe,
  type Era,
  MODERN_VERSION,
  modernSupportFromAnswer,
  type ProtocolChoice,
  parseJson,
} from '../eras/classify.ts';
import type { JsonRpcMessage, RequestId } from '../jsonrpc.ts';
import { isEventStream, isJson, isMessageEvent, readEventStream } from '../upstream/event-stream.ts';
import { upstreamHeaders } from '../upstream/headers.ts';
import {
  discard,
  type ReachTest,
  tooLarge,
  type UpstreamHttp,
  type UpstreamResponse,
} from '../upstream/http.ts';
import { type SharedVerdictOptions, SharedVerdicts } from './shared-verdicts.ts';

/** What is known of one upstream; `undefined` = not known yet. */
export interface EraVerdict {
  readonly modern?: boolean | undefined;
  readonly session?: boolean | undefined;
}

/** Limits of the verdict cache, and the store it is shared through. */
export type EraVerdictOptions = Omit<SharedVerdictOptions<EraVerdict>, 'kind' | 'parse' | 'merge'>;

/**
 * A bounded, expiring map from upstream key to what it speaks, shared with the other instances
 * through the store (issue 19).
 */
export class EraVerdicts {
  readonly #verdicts: SharedVerdicts<EraVerdict>;

  constructor(options: EraVerdictOptions) {
    this.#verdicts = new SharedVerdicts({
      ...options,
      kind: 'era',
      parse: eraVerdictOf,
      // What another instance learnt of one era leaves what this one knows of the other.
      merge: (mine, theirs) => ({ ...mine, ...theirs }),
    });
  }

  /** What is known of `key`, if still fresh (never waits on the store). */
  get(key: string): EraVerdict {
    return this.#verdicts.get(key) ?? {};
  }

  /** Whether {@link recall} could learn more of `key` than {@link get} knows. */
  mayRecall(key: string): boolean {
    return this.#verdicts.mayRecall(key);
  }

  /** What is known of `key`, asking the shared store when this instance knows nothing. */
  async recall(key: string): Promise<EraVerdict> {
    return (await this.#verdicts.recall(key)) ?? {};
  }

  /** Records whether `key` speaks `era` (what was known of the other era stays, with a new lifetime). */
  learn(key: string, era: Era, supported: boolean): void {
    this.#verdicts.set(key, { ...this.get(key), [era]: supported });
  }

  /** Listens for what other instances learn. */
  listen(): Promise<void> {
    return this.#verdicts.listen();
  }

  close(): Promise<void> {
    return this.#verdicts.close();
  }
}

/** A verdict read from the store: only the two known fields, each a boolean if present. */
function eraVerdictOf(value: unknown): EraVerdict | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { modern, session } = value as Record<string, unknown>;
  if (
    (modern !== undefined && typeof modern !== 'boolean') ||
    (session !== undefined && typeof session !== 'boolean')
  )
    return undefined;
  return { ...(modern === undefined ? {} : { modern }), ...(session === undefined ? {} : { session }) };
}

/** The upstream being asked about. */
export interface EraProbeTarget {
  /** What verdicts are remembered by: the URL, or `stdio:<name>`. */
  readonly key: string;
  /** Where an HTTP probe goes; absent for targets probed in band (stdio, WebSocket). */
  readonly url?: URL | undefined;
  readonly bearerToken?: string | undefined;
  readonly protocol?: ProtocolChoice | undefined;
  /** Where a probe's redirects may go for the caller (dispatch/targets.ts). */
  readonly mayReach?: ReachTest | undefined;
}

/** Collaborators of the detector. */
export interface EraDetectorDeps {
  readonly http: UpstreamHttp;
  readonly verdicts: EraVerdicts;
  readonly timeoutMs: number;
}

/** Answers "does this upstream speak the modern / session era?" from config, cache or a probe. */
export class EraDetector {
  readonly #deps: EraDetectorDeps;
  readonly #probes = new Map<string, Promise<boolean | undefined>>();

  constructor(deps: EraDetectorDeps) {
    this.#deps = deps;
  }

  /** What is known now, without probing. */
  known(target: EraProbeTarget): EraVerdict {
    if (target.protocol === 'modern') return { modern: true, session: false };
    if (target.protocol === 'session') return { modern: false, session: true };
    return this.#deps.verdicts.get(target.key);
  }

  /** Whether {@link recall} could learn more than {@link known} (the shared store, on a miss). */
  mayRecall(target: EraProbeTarget): boolean {
    return (
      (target.protocol === undefined || target.protocol === 'auto') &&
      this.#deps.verdicts.mayRecall(target.key)
    );
  }

  /** What is known, asking the shared store when this instance knows nothing (no probe). */
  async recall(target: EraProbeTarget): Promise<EraVerdict> {
    return this.mayRecall(target) ? this.#deps.verdicts.recall(target.key) : this.known(target);
  }

  /** Records what a server's answer revealed. */
  learn(target: EraProbeTarget, era: Era, supported: boolean): void {
    if (target.protocol === undefined || target.protocol === 'auto')
      this.#deps.verdicts.learn(target.key, era, supported);
  }

  /**
   * Whether the upstream speaks the modern era: from what this instance knows, else what
   * another one learnt (the shared store), else a `server/discover` probe (concurrent callers
   * share one). `undefined` when the probe was inconclusive (the server failed, refused the
   * credentials, or could not be reached; nothing is cached then), or for a target probed in band.
   */
  async supportsModern(target: EraProbeTarget, signal?: AbortSignal): Promise<boolean | undefined> {
    const known = this.known(target).modern;
    if (known !== undefined) return known;
    const { key } = target;
    let probe = this.#probes.get(key);
    if (!probe) {
      probe = this.#recallOrProbe(target).finally(() => this.#probes.delete(key));
      this.#probes.set(key, probe);
    }
    if (!signal) return probe;
    const { promise, resolve, reject } = Promise.withResolvers<boolean | undefined>();
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    probe.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    return promise;
  }

  async #recallOrProbe(target: EraProbeTarget): Promise<boolean | undefined> {
    const recalled = (await this.recall(target)).modern;
    if (recalled !== undefined) return recalled;
    const { url } = target;
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) return undefined;
    return this.#probe(target, url);
  }

  async #probe(target: EraProbeTarget, url: URL): Promise<boolean | undefined> {
    const { timeoutMs } = this.#deps;
    const http = this.#deps.http.reaching(target.mayReach);
    const link = linkAbort([], timeoutMs);
    const discover = discoverProbe('mcp-proxy-era-probe');
    const headers = upstreamHeaders(
      { accept: 'message', jsonBody: true, bearerToken: target.bearerToken, protocolVersion: MODERN_VERSION },
      { 'mcp-method': 'server/discover' },
    );
    try {
      const response = await http.send(url, {
        method: 'POST',
        headers,
        body: JSON.stringify(discover),
        signal: link.signal,
      });
      let body: unknown;
      if (isJson(response)) {
        body = parseJson(await http.readText(response, link.signal));
      } else if (isEventStream(response)) {
        body = await this.#answerFromStream(response, discover.id, link.signal);
      } else {
        discard(response);
      }
      const supported = modernSupportFromAnswer(response.status, body);
      if (supported !== undefined) this.learn(target, 'modern', supported);
      return supported;
    } catch {
      return undefined;
    } finally {
      link.dispose();
    }
  }

  /**
   * The probe's answer from an event stream. Only that one message is kept: every other event
   * is dropped as soon as it is seen, the stream is let go once the answer is in, and the whole
   * stream may carry no more than the response limit (issue 14, finding 5: an upstream
   * streaming 1 MB events grew the heap by gigabytes when every event was kept).
   */
  async #answerFromStream(
    response: UpstreamResponse,
    id: RequestId,
    signal: AbortSignal,
  ): Promise<JsonRpcMessage | undefined> {
    const limit = this.#deps.http.responseLimitBytes;
    let answer: JsonRpcMessage | undefined;
    let read = 0;
    try {
      await readEventStream(
        response,
        limit,
        (event) => {
          if (answer !== undefined) return;
          read += event.data.length;
          if (read > limit) throw tooLarge(limit);
          if (!isMessageEvent(event)) return;
          const parsed = parseJson(event.data);
          if (typeof parsed !== 'object' || parsed === null || (parsed as { id?: unknown }).id !== id) return;
          answer = parsed as JsonRpcMessage;
          // Nothing after the answer matters: stop reading (the loop ends on the destroyed body).
          discard(response);
        },
        signal,
      );
    } catch (error) {
      if (answer === undefined) throw error;
    }
    return answer;
  }
}
