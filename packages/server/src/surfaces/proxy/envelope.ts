/**
 * @module surfaces/proxy/envelope
 * The POST /proxy envelope: the target and its credentials next to the JSON-RPC fields.
 */
import { z } from 'zod';
import { MAX_TARGET_URL_LENGTH, type TargetRequest, TRANSPORT_CHOICES } from '../../dispatch/targets.ts';
import { ProxyError } from '../../errors.ts';
import type { JsonRpcNotification, JsonRpcRequest } from '../../jsonrpc.ts';

/**
 * The longest value of each field, in characters. The schema and the fast path both read them,
 * and test/envelope.test.ts checks the two agree over a generated table of envelopes.
 */
const MAX = {
  mcp_server_url: MAX_TARGET_URL_LENGTH,
  server: 64,
  mcp_token: 8192,
  /** Session ids and versions travel in headers. */
  header: 1024,
  id: 256,
  method: 256,
} as const;

/** A visible-ASCII header value. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

const headerSafe = z.string().min(1).max(MAX.header).regex(HEADER_SAFE, 'must be visible ASCII characters');

/** The one definition of the envelope; {@link plainEnvelope} is its fast path. */
export const ENVELOPE_SCHEMA = z.strictObject({
  mcp_server_url: z
    .string()
    .min(1)
    .max(MAX.mcp_server_url, `is longer than ${MAX.mcp_server_url} characters`)
    .optional(),
  server: z.string().min(1).max(MAX.server).optional(),
  mcp_token: z.string().min(1).max(MAX.mcp_token).optional(),
  mcp_session_id: headerSafe.optional(),
  mcp_protocol_version: headerSafe.optional(),
  transport: z.enum(TRANSPORT_CHOICES).optional(),
  jsonrpc: z.literal('2.0', { error: 'must be "2.0"' }),
  id: z.union([z.string().max(MAX.id), z.number().finite()]).optional(),
  method: z.string().min(1, 'is required').max(MAX.method),
  params: z.record(z.string(), z.unknown()).optional(),
});

/** A validated POST /proxy envelope. */
export type Envelope = z.infer<typeof ENVELOPE_SCHEMA>;

/** Validates a parsed body; throws `invalid_envelope` naming the first bad field. */
export function parseEnvelope(body: unknown): Envelope {
  const parsed = plainEnvelope(body) ?? ENVELOPE_SCHEMA.safeParse(body);
  if (parsed.success) {
    const { mcp_server_url, server } = parsed.data;
    if ((mcp_server_url === undefined) === (server === undefined)) {
      throw new ProxyError(
        'invalid_envelope',
        'Invalid proxy envelope: give exactly one of mcp_server_url (a URL) or server (a configured server name).',
        { data: { field: 'mcp_server_url' } },
      );
    }
    return parsed.data;
  }
  const issue = parsed.error.issues[0];
  let where = issue?.path.join('.') || 'body';
  let problem = issue?.message ?? 'is invalid';
  if (issue?.code === 'unrecognized_keys') {
    where = 'body';
    problem = `has unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  } else if (where === 'body') {
    problem = 'must be a JSON object';
  } else if (issue?.code === 'invalid_type' && issue.input === undefined) {
    problem = 'is required';
  }
  throw new ProxyError('invalid_envelope', `Invalid proxy envelope: ${where} ${problem}.`, {
    data: { field: where },
  });
}

const ENVELOPE_KEYS: ReadonlySet<string> = new Set(Object.keys(ENVELOPE_SCHEMA.shape));

/**
 * The common, well-formed envelope checked by hand: the schema's rules, or stricter (issue #10:
 * the schema costs several microseconds per request). Anything it does not accept outright is
 * left to the schema, which also words the error, so both paths accept exactly the same bodies.
 */
export function plainEnvelope(
  body: unknown,
): { readonly success: true; readonly data: Envelope } | undefined {
  if (typeof body !== 'object' || body === null || Object.getPrototypeOf(body) !== Object.prototype) {
    return undefined;
  }
  const b = body as Record<string, unknown>;
  for (const key in b) if (!ENVELOPE_KEYS.has(key)) return undefined;
  const { id, params, transport } = b;
  const ok =
    b.jsonrpc === '2.0' &&
    text(b.method, 1, MAX.method) &&
    optionalText(b.mcp_server_url, MAX.mcp_server_url) &&
    optionalText(b.server, MAX.server) &&
    optionalText(b.mcp_token, MAX.mcp_token) &&
    optionalHeaderSafe(b.mcp_session_id) &&
    optionalHeaderSafe(b.mcp_protocol_version) &&
    (transport === undefined || (TRANSPORT_CHOICES as readonly unknown[]).includes(transport)) &&
    (id === undefined || text(id, 0, MAX.id) || (typeof id === 'number' && Number.isFinite(id))) &&
    (params === undefined ||
      (typeof params === 'object' && params !== null && Object.getPrototypeOf(params) === Object.prototype));
  return ok ? { success: true, data: b as Envelope } : undefined;
}

function text(value: unknown, min: number, max: number): boolean {
  return typeof value === 'string' && value.length >= min && value.length <= max;
}

function optionalText(value: unknown, max: number): boolean {
  return value === undefined || text(value, 1, max);
}

function optionalHeaderSafe(value: unknown): boolean {
  return value === undefined || (text(value, 1, MAX.header) && HEADER_SAFE.test(value as string));
}

/** The upstream an envelope names. */
export function envelopeTarget(envelope: Envelope): TargetRequest {
  if (envelope.server !== undefined) return { server: envelope.server, bearerToken: envelope.mcp_token };
  return {
    url: envelope.mcp_server_url ?? '',
    transport: envelope.transport ?? 'auto',
    bearerToken: envelope.mcp_token,
  };
}

/** The JSON-RPC message an envelope carries (envelope fields stripped). */
export function envelopeMessage(envelope: Envelope): JsonRpcRequest | JsonRpcNotification {
  const base = { jsonrpc: '2.0' as const, method: envelope.method };
  const withParams = envelope.params === undefined ? base : { ...base, params: envelope.params };
  return envelope.id === undefined ? withParams : { ...withParams, id: envelope.id };
}
