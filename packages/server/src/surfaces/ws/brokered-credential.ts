/**
 * @module surfaces/ws/brokered-credential
 * What a `/ws` connection asks of the upstream OAuth broker (issue 18) when the broker supplies
 * its upstream credential: the per-frame token read, the retry after a refresh, the sign-in
 * after a refusal, and whether the user ended the connection since the socket opened.
 */
import { findProxyError, type ProxyError } from '../../errors.ts';

/** The broker's part of a connection's collaborators (all absent when the caller brings its own token). */
export interface BrokeredCredential {
  /**
   * When the OAuth broker supplies this socket's upstream credential: starts a sign-in after the
   * upstream's 401, or its 403 `insufficient_scope` (step-up), given the refusal, and returns the
   * `upstream_auth_required` error to send (or the refusal itself when it is no scope challenge).
   */
  readonly authRequired?: ((refusal: ProxyError) => Promise<ProxyError>) | undefined;
  /**
   * When the OAuth broker supplies this socket's upstream credential: reads the principal's
   * current token from the vault (refreshing it when due) before a frame's messages go upstream,
   * so a socket outlives its handshake token (review R5). Never rejects; answers an error when
   * the user ended the connection since the socket opened: the socket closes with it.
   */
  readonly freshen?: (() => Promise<ProxyError | undefined>) | undefined;
  /**
   * When the OAuth broker supplies this socket's upstream credential: the upstream answered 401
   * to the token in use; true when a newer usable token is now in place (refreshed), so the
   * request is sent once more instead of asking for a sign-in (review R5). Never rejects.
   */
  readonly renewed?: (() => Promise<boolean>) | undefined;
  /**
   * When the OAuth broker supplies this socket's upstream credential: an error when the user
   * ended the connection since the socket opened (review oauth6 R1). Asked at each heartbeat, so
   * a socket that sends nothing (a WebSocket upstream pushing on) ends too. Never rejects.
   */
  readonly ended?: (() => Promise<ProxyError | undefined>) | undefined;
}

/** An upstream's 401 or 403: the broker may answer it with a sign-in. */
export function isAuthRefusal(refusal: ProxyError | undefined): refusal is ProxyError {
  return refusal?.code === 'upstream_unauthorized' && (refusal.status === 401 || refusal.status === 403);
}

/** An upstream's 401 (or 403) turned into the broker's `upstream_auth_required`, when it acts. */
export async function authFailure(credential: BrokeredCredential, error: unknown): Promise<unknown> {
  const refusal = findProxyError(error);
  const authRequired = credential.authRequired;
  if (!authRequired || !isAuthRefusal(refusal)) return error;
  try {
    return await authRequired(refusal);
  } catch (failure) {
    return failure;
  }
}
