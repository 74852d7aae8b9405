/**
 * @module surfaces/mcp/brokered-sign-in
 * The upstream OAuth broker's part in the Streamable HTTP endpoint (issue 18): the principal's
 * upstream token from the vault when the caller brings none, and, when the upstream refuses it
 * (401, or 403 `insufficient_scope` for a step-up), the caller asked to sign in instead — in a
 * lone request's answer where it can (MCP's -32042 URL elicitation, or a 2026-07-28 input
 * request), else as the HTTP 401 `upstream_auth_required`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OAuthBroker } from '../../credentials/broker.ts';
import { LiveCredential } from '../../credentials/live-credential.ts';
import type { ResolvedTarget } from '../../dispatch/targets.ts';
import { clientEraOf } from '../../eras/classify.ts';
import { findProxyError, ProxyError, toJsonRpcError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import { isRequest, type JsonRpcRequest, type JsonRpcResponse, type MessageBatch } from '../../jsonrpc.ts';
import { discard, headerValue, type UpstreamResponse } from '../../upstream/http.ts';
import { authRefusal, refusalInAnswer } from '../../upstream/status.ts';
import { header } from './inbound.ts';
import type { SignInRounds } from './sign-in-input.ts';
import { urlElicitationRequired } from './url-elicitation.ts';

/** Collaborators of the endpoint's sign-ins. */
export interface BrokeredSignInDeps {
  /**
   * The upstream OAuth broker, once loaded (undefined: not loaded, so off): signs the principal
   * in when the caller brings no credential.
   */
  readonly broker?: (() => OAuthBroker | undefined) | undefined;
  /** How a 2026-07-28 client is asked to sign in (an input request), and its retry resumed. */
  readonly signIn?: SignInRounds | undefined;
}

/** A request the broker supplies the upstream credential of. */
interface Brokered {
  readonly principalKey: string;
  readonly target: ResolvedTarget;
  /** Whether the vault held a token (a 401 then means it was refused). */
  readonly hadToken: boolean;
  /** The token it supplied, so a refusal only touches an entry that still holds it (F5). */
  readonly token: string | undefined;
  readonly origin: string | undefined;
}

/** The broker's tokens and sign-in answers of the Streamable HTTP endpoint. */
export class BrokeredSignIn {
  readonly #deps: BrokeredSignInDeps;
  /** Requests whose upstream credential the broker supplies, while they run. */
  readonly #brokered = new WeakMap<FastifyRequest, Brokered>();

  constructor(deps: BrokeredSignInDeps) {
    this.#deps = deps;
  }

  /**
   * The target with the principal's upstream token from the vault when the broker acts (no
   * credential from the caller or the operator); undefined when a sign-in must come first.
   */
  async withBrokeredToken(
    request: FastifyRequest,
    target: ResolvedTarget,
    principalKey: string,
  ): Promise<ResolvedTarget | undefined> {
    const broker = this.#deps.broker?.();
    if (!broker?.enabled || target.kind === 'stdio' || target.bearerToken !== undefined) return target;
    // A session opened with it holds the credential: a refresh, a new sign-in or a disconnect
    // reaches it at its next message (review6 OAUTH-1).
    const credential = await LiveCredential.read(broker, principalKey, target);
    const token = credential.token;
    this.#brokered.set(request, {
      principalKey,
      target,
      hadToken: token !== undefined,
      token,
      origin: header(request, 'origin'),
    });
    if (token === undefined && broker.demands(target)) return undefined;
    return { ...target, bearerToken: token, credential };
  }

  /**
   * Starts a sign-in and answers: a lone request gets MCP's URL elicitation error (-32042) as its
   * answer; anything else (a notification, a batch, a GET) the HTTP 401 `upstream_auth_required`.
   */
  async authRequired(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch | undefined,
    target: ResolvedTarget,
    challenge: string | undefined,
  ): Promise<FastifyReply> {
    const error = await this.#signInFor(request, reply, target, challenge);
    return this.#askSignIn(request, reply, inbound, error);
  }

  /**
   * A route that opens its upstream itself (held, bridged) failed: its 401 (or 403 step-up)
   * arrives thrown. Answers the sign-in the broker asks for; rethrows anything else.
   */
  async afterThrown(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch | undefined,
    resolved: ResolvedTarget,
    error: unknown,
  ): Promise<FastifyReply> {
    const refusal = findProxyError(error);
    if (refusal?.code !== 'upstream_unauthorized' || !this.#brokered.has(request) || reply.sent) throw error;
    const challenge = refusal.headers['www-authenticate'];
    const stepUp = refusal.status === 403 ? await this.#stepUp(request, challenge) : undefined;
    if (stepUp) return this.#askSignIn(request, reply, inbound, stepUp);
    if (refusal.status !== 401) throw error;
    return this.authRequired(request, reply, inbound, resolved, challenge);
  }

  /**
   * A pass-through answer the broker takes over: a 403 step-up, or a 401 to a brokered request
   * (the caller is asked to sign in instead of seeing the upstream's challenge). True when it
   * answered the caller itself (the upstream's answer is discarded): a boolean, never the reply,
   * which is a thenable that settles with `undefined` once sent (issue 14, finding 13).
   */
  async answered(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch | undefined,
    response: UpstreamResponse,
    target: ResolvedTarget,
  ): Promise<boolean> {
    if (response.status === 403) {
      const stepUp = await this.#stepUp(request, headerValue(response.headers, 'www-authenticate')).catch(
        (error: unknown) => {
          discard(response);
          throw error;
        },
      );
      if (stepUp) {
        discard(response);
        await this.#askSignIn(request, reply, inbound, stepUp);
        return true;
      }
    }
    if (response.status === 401 && this.#brokered.has(request)) {
      const challenge = headerValue(response.headers, 'www-authenticate');
      discard(response);
      await this.authRequired(
        request,
        reply,
        inbound,
        this.#brokered.get(request)?.target ?? target,
        challenge,
      );
      return true;
    }
    return false;
  }

  /**
   * A session's upstream (held, or pooled) refused the broker's token after the session opened
   * (its answer carries the refusal and the challenge in `data`): the caller is asked to sign in
   * (401) or to step up (403 `insufficient_scope`) instead, for this request's principal and
   * upstream. Undefined: the answer stands.
   */
  async refusedInSession(
    request: FastifyRequest,
    reply: FastifyReply,
    message: JsonRpcRequest,
    answer: JsonRpcResponse,
  ): Promise<JsonRpcResponse | undefined> {
    const brokered = this.#brokered.get(request);
    const refusal = refusalInAnswer(answer);
    if (!brokered || refusal === undefined) return undefined;
    const challenge = refusal.headers['www-authenticate'];
    let error: ProxyError | undefined;
    if (refusal.status === 403) error = await this.#stepUp(request, challenge);
    else {
      error = await this.#signInFor(request, reply, brokered.target, challenge).catch((refusal: unknown) => {
        if (findProxyError(refusal)?.code === 'upstream_unauthorized') return undefined;
        throw refusal;
      });
    }
    return error && this.#signInAnswer(request, message, error);
  }

  /**
   * A 2026-07-28 client's retry after a sign-in round: the proxy's `requestState` and input
   * response come off each request before anything else sees it. A declined sign-in (or a
   * handle that is not the caller's) is the lone request's answer; undefined when it goes on.
   */
  resume(
    request: FastifyRequest,
    reply: FastifyReply,
    parsed: MessageBatch,
    principalKey: string,
  ): FastifyReply | undefined {
    const signIn = this.#deps.signIn;
    if (!signIn) return undefined;
    for (const [index, message] of parsed.messages.entries()) {
      if (!isRequest(message)) continue;
      try {
        parsed.messages[index] = signIn.resume(message, principalKey);
      } catch (error) {
        if (parsed.batch) throw error;
        const answer = toJsonRpcError(error, message.id);
        request.audit?.answer(answer);
        return reply.code(200).type('application/json').send(answer);
      }
    }
    return undefined;
  }

  /**
   * The `upstream_auth_required` of a sign-in started after the upstream's 401; throws the
   * upstream's own refusal when the server shows no sign of OAuth.
   */
  async #signInFor(
    request: FastifyRequest,
    reply: FastifyReply,
    target: ResolvedTarget,
    challenge: string | undefined,
  ): Promise<ProxyError> {
    const broker = this.#deps.broker?.() as OAuthBroker;
    const brokered = this.#brokered.get(request);
    const principalKey = (request.identity as { principalKey: string }).principalKey;
    if (target.kind === 'stdio') throw new ProxyError('internal_error');
    const signal = callerSignal(reply);
    if (brokered?.token !== undefined) await broker.rejected(principalKey, target, brokered.token, signal);
    // Not an OAuth server after all: its own refusal, as without the broker.
    const notOAuth = authRefusal(401, challenge, { upstreamStatus: 401 }) as ProxyError;
    const error = await broker.required(
      principalKey,
      target,
      challenge,
      header(request, 'origin'),
      notOAuth,
      signal,
    );
    if (error === notOAuth) throw error;
    return error;
  }

  /**
   * Step-up: the upstream refused the broker's token with 403 `insufficient_scope`; the caller
   * is asked to sign in again for more scopes, as for a 401. Undefined when the broker supplied
   * no token or the 403 is no scope challenge: the upstream's refusal stands.
   */
  async #stepUp(request: FastifyRequest, challenge: string | undefined): Promise<ProxyError | undefined> {
    const brokered = this.#brokered.get(request);
    const broker = this.#deps.broker?.();
    if (!broker || !brokered?.hadToken || brokered.target.kind === 'stdio') return undefined;
    return broker.stepUp(brokered.principalKey, brokered.target, challenge);
  }

  /** Answers `upstream_auth_required`: in a lone request's answer where it can, else as the HTTP 401. */
  #askSignIn(
    request: FastifyRequest,
    reply: FastifyReply,
    inbound: MessageBatch | undefined,
    error: ProxyError,
  ): FastifyReply {
    const only = inbound && !inbound.batch && inbound.messages.length === 1 ? inbound.messages[0] : undefined;
    if (!only || !isRequest(only)) throw error;
    const answer = this.#signInAnswer(request, only, error);
    request.audit?.answer(answer);
    return reply.code(200).type('application/json').send(answer);
  }

  /** The answer to `message` that asks for the sign-in of `error`, in the caller's era. */
  #signInAnswer(request: FastifyRequest, message: JsonRpcRequest, error: ProxyError): JsonRpcResponse {
    const signIn = this.#deps.signIn;
    const principalKey = (request.identity as { principalKey: string }).principalKey;
    // 2026-07-28 has no -32042: its clients are asked through an input request.
    return signIn && clientEraOf(message, header(request, 'mcp-protocol-version')) === 'modern'
      ? signIn.answer(message, error, principalKey)
      : urlElicitationRequired(message.id, error);
  }
}
