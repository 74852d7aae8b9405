/**
 * @module transport/create
 * Picks the transport for the `transport` option. Only `http` (POST /proxy) is served by this
 * proxy version; the others fail clearly instead of pretending.
 */
import { NotSupportedError } from '../errors.ts';
import type { ResolvedOptions } from '../options.ts';
import { HttpTransport } from './http.ts';
import type { Transport } from './transport.ts';

const ENDPOINTS = { streamable: 'Streamable HTTP (/mcp)', ws: 'WebSocket (/ws)' } as const;

/** The transport for `options.transport`, or a {@link NotSupportedError}. */
export function createTransport(options: ResolvedOptions): Transport {
  if (options.transport === 'http') return new HttpTransport(options);
  throw new NotSupportedError(
    'not_supported',
    `transport "${options.transport}" (${ENDPOINTS[options.transport]}) is not yet supported by this ` +
      'proxy version: use transport "http" (POST /proxy).',
    { data: { field: 'transport' } },
  );
}
