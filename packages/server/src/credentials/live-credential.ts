/**
 * @module credentials/live-credential
 * The broker's token as a connection that outlives it holds it (issue 18): a `/ws` socket
 * (review oauth6 R1, R5) or a session the proxy holds on `/proxy` and `/mcp` (review6 OAUTH-1).
 * Its upstream reads {@link LiveCredential.bearer} at each request; before a caller's messages go
 * upstream the token is read again from the vault (a refresh or a new sign-in reaches it), and
 * when the user ended the connection since it opened (the vault's end mark changed: a
 * disconnect, an eviction) the holder ends: what authenticated once with the ended token (a
 * WebSocket upstream, an HTTP+SSE stream) must not go on serving.
 */
import { ProxyError } from '../errors.ts';
import type { OAuthBroker, OAuthTarget } from './broker.ts';

/** The broker's current token for one (principal, upstream), and whether the user ended it. */
export class LiveCredential {
  readonly #broker: OAuthBroker;
  readonly #principalKey: string;
  readonly #target: OAuthTarget;
  readonly #openedMark: string | undefined;
  #current: string | undefined;

  private constructor(
    broker: OAuthBroker,
    principalKey: string,
    target: OAuthTarget,
    openedMark: string | undefined,
    token: string | undefined,
  ) {
    this.#broker = broker;
    this.#principalKey = principalKey;
    this.#target = target;
    this.#openedMark = openedMark;
    this.#current = token;
  }

  /**
   * Reads the end mark, then the token (refreshed when due): a disconnect between the two
   * changes the mark, so the holder of the token read ends rather than keep an ended token.
   */
  static async read(
    broker: OAuthBroker,
    principalKey: string,
    target: OAuthTarget,
    signal?: AbortSignal,
  ): Promise<LiveCredential> {
    const mark = await broker.endMark(principalKey, target);
    const token = await broker.bearerFor(principalKey, target, signal);
    return new LiveCredential(broker, principalKey, target, mark, token);
  }

  /** The token in use (undefined: none; the upstream's 401 then asks for a sign-in). */
  get token(): string | undefined {
    return this.#current;
  }

  /** The token to send now: the upstream reads it at each request. */
  readonly bearer = (): string | undefined => this.#current;

  /** A newer token took the place of the one refused (a refresh after the upstream's 401). */
  replace(token: string): void {
    this.#current = token;
  }

  /**
   * The upstream refused `sent`, the token a message went with (401): the broker refreshes it
   * when the vault still holds it (else drops it), and answers the newer token the vault holds
   * when another message's refusal replaced it already, so N messages refused together cost one
   * refresh, not one each (review10 HARD-2). True when a newer token took its place, so the
   * message is sent once more; false asks for a sign-in. Never rejects.
   */
  async refused(sent: string | undefined): Promise<boolean> {
    if (sent === undefined) return false;
    const fresh = await this.#broker.rejected(this.#principalKey, this.#target, sent).catch(() => undefined);
    if (fresh === undefined) return false;
    this.#current = fresh;
    return true;
  }

  /** `upstream_auth_ended` when the user ended the connection since this was read. Never rejects. */
  async ended(): Promise<ProxyError | undefined> {
    try {
      const mark = await this.#broker.endMark(this.#principalKey, this.#target);
      return mark !== undefined && mark !== this.#openedMark
        ? new ProxyError('upstream_auth_ended')
        : undefined;
    } catch {
      // The store unreachable: asked again at the next use.
      return undefined;
    }
  }

  /**
   * Before a caller's messages go upstream: {@link ended}, else the token read again from the
   * vault (refreshed behind the answer when due but still valid). Never rejects.
   */
  async freshen(): Promise<ProxyError | undefined> {
    const error = await this.ended();
    if (error !== undefined) return error;
    try {
      // No entry any more (refresh refused, deleted): the old token is not used again; the
      // upstream's 401 to a call without one asks for a sign-in.
      this.#current = await this.#broker.bearerFor(this.#principalKey, this.#target, undefined, false);
    } catch {
      // The vault or the authorization server unreachable: the token held goes on.
    }
    return undefined;
  }
}
