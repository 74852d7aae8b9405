/**
 * @module credentials/challenge
 * Reads what an upstream's `WWW-Authenticate: Bearer …` challenge tells the broker: where its
 * protected resource metadata is (RFC 9728 §5.1) and which scopes it wants (RFC 6750 §3).
 */

/** The parts of a Bearer challenge the broker uses. */
export interface BearerChallenge {
  readonly resourceMetadata?: string | undefined;
  readonly scope?: string | undefined;
  readonly error?: string | undefined;
}

const MAX_CHALLENGE = 4096;

/** Parses the Bearer challenge of a `WWW-Authenticate` value; an empty object when there is none. */
export function parseBearerChallenge(header: string | undefined): BearerChallenge {
  if (header === undefined || header.length > MAX_CHALLENGE) return {};
  const start = /(?:^|,\s*)Bearer(?:\s+|$)/i.exec(header);
  if (!start) return {};
  const params: Record<string, string> = {};
  const rest = header.slice(start.index + start[0].length);
  // auth-param = token "=" ( token / quoted-string ); the next scheme ends the list.
  const param = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;
  for (let match = param.exec(rest); match; match = param.exec(rest)) {
    const name = (match[1] as string).toLowerCase();
    if (!Object.hasOwn(params, name)) params[name] = match[2]?.replace(/\\(.)/g, '$1') ?? match[3] ?? '';
  }
  return { resourceMetadata: params.resource_metadata, scope: params.scope, error: params.error };
}
