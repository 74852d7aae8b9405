/**
 * @module surfaces/mcp/sign-in-input
 * How `/mcp` asks a 2026-07-28 client to sign in to the upstream (issue 18). On that revision
 * the 2025 URLElicitationRequiredError (-32042) never appears on the wire: a URL-mode
 * elicitation rides the multi-round-trip flow instead. A lone `tools/call`, `prompts/get` or
 * `resources/read` from a client that declared URL elicitation is answered with an
 * `InputRequiredResult` whose one input request (`mcp-proxy/sign-in`) is the elicitation
 * `{mode: "url", url: authorizeUrl, message}` and whose `requestState` is the proxy's handle
 * (`mcpp-auth.…`). The client opens the URL, the user signs in, and the client retries the same
 * request with that `requestState` and its `inputResponses`: the proxy takes both off (the
 * upstream never issued them), puts back whatever `requestState`/`inputResponses` the request
 * carried for the upstream's own round (sealed in the handle), and serves the call with the new
 * token. A declined sign-in ends the call with `upstream_auth_declined`. Any other modern
 * request gets the proxy's `upstream_auth_required` error in its answer.
 */

import { open, seal } from '../../credentials/sealed-box.ts';
import type { VaultKeys } from '../../credentials/vault-keys.ts';
import { META, metaOf } from '../../eras/classify.ts';
import { ProxyError, toJsonRpcError } from '../../errors.ts';
import { asObject, type JsonObject, type JsonRpcRequest, type JsonRpcResponse } from '../../jsonrpc.ts';
import { signInPrompt } from './url-elicitation.ts';

/** The key of the proxy's input request in `inputRequests` / `inputResponses`. */
export const SIGN_IN_INPUT_KEY = 'mcp-proxy/sign-in';
/** Prefix of the proxy's sign-in `requestState` handles (the facade's own are `mcpp-state.`). */
const HANDLE_PREFIX = 'mcpp-auth.';
/** A handle lives as long as the sign-in link it carries. */
const HANDLE_TTL_MS = 10 * 60 * 1000;
/** Requests that may answer with an `InputRequiredResult` (2026-07-28). */
const INPUT_CAPABLE = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** What a handle keeps: the upstream's own round, if the request was in one. */
interface Sealed {
  readonly exp: number;
  readonly state?: unknown;
  readonly responses?: unknown;
}

/** Whether `message` can be asked for the sign-in through an input request. */
function acceptsUrlInput(message: JsonRpcRequest): boolean {
  if (!INPUT_CAPABLE.has(message.method)) return false;
  const capabilities = asObject(metaOf(message)[META.clientCapabilities]);
  return asObject(capabilities?.elicitation)?.url !== undefined;
}

/** Sign-in rounds of 2026-07-28 clients on `/mcp`: the handles are sealed with the vault's keys. */
export class SignInRounds {
  readonly #keys: VaultKeys;
  readonly #now: () => number;

  constructor(keys: VaultKeys, now: () => number) {
    this.#keys = keys;
    this.#now = now;
  }

  /**
   * The answer asking a modern client to sign in: an `InputRequiredResult` when the request and
   * the client allow one, else the `upstream_auth_required` error as the request's answer.
   */
  answer(message: JsonRpcRequest, error: ProxyError, principalKey: string): JsonRpcResponse {
    if (!acceptsUrlInput(message)) return toJsonRpcError(error, message.id);
    const sealed: Sealed = {
      exp: this.#now() + HANDLE_TTL_MS,
      ...(message.params?.requestState === undefined ? {} : { state: message.params.requestState }),
      ...(message.params?.inputResponses === undefined ? {} : { responses: message.params.inputResponses }),
    };
    const handle = `${HANDLE_PREFIX}${seal(this.#keys, slot(principalKey), JSON.stringify(sealed))}`;
    return {
      jsonrpc: '2.0',
      id: message.id,
      result: {
        resultType: 'input_required',
        inputRequests: {
          [SIGN_IN_INPUT_KEY]: {
            method: 'elicitation/create',
            params: {
              mode: 'url',
              url: String(error.data.authorizeUrl),
              message: signInPrompt(error, ''),
            },
          },
        },
        requestState: handle,
      },
    } as JsonRpcResponse;
  }

  /**
   * A client's retry after a sign-in round: the request as the upstream must see it (the proxy's
   * `requestState` and input response taken off, the upstream's own put back); the request
   * unchanged when it carries no handle of ours. Throws `upstream_auth_declined` when the user
   * declined, `oauth_state_invalid` for a handle that is not this principal's or has expired.
   */
  resume(message: JsonRpcRequest, principalKey: string): JsonRpcRequest {
    const state = message.params?.requestState;
    if (typeof state !== 'string' || !state.startsWith(HANDLE_PREFIX)) return message;
    const plain = open(this.#keys, slot(principalKey), state.slice(HANDLE_PREFIX.length));
    let sealed: Sealed | undefined;
    try {
      sealed = plain === undefined ? undefined : (JSON.parse(plain) as Sealed);
    } catch {
      sealed = undefined;
    }
    if (sealed === undefined || typeof sealed.exp !== 'number' || sealed.exp < this.#now()) {
      throw new ProxyError('oauth_state_invalid');
    }
    const responses = asObject(message.params?.inputResponses);
    const ours = asObject(responses?.[SIGN_IN_INPUT_KEY]);
    if (ours?.action !== 'accept') throw new ProxyError('upstream_auth_declined');
    const params: JsonObject = { ...message.params };
    delete params.requestState;
    delete params.inputResponses;
    if (sealed.state !== undefined) params.requestState = sealed.state as JsonObject[string];
    if (sealed.responses !== undefined) params.inputResponses = sealed.responses as JsonObject[string];
    return { ...message, params };
  }
}

/** The additional data of a principal's handles: one principal's handle does not open for another. */
function slot(principalKey: string): string {
  return `sign-in-round\n${principalKey}`;
}
