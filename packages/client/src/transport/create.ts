/**
 * @module transport/create
 * Picks the transport for the `transport` option.
 */
import type { ResolvedOptions } from '../options.ts';
import { HttpTransport } from './http.ts';
import { StreamableTransport } from './streamable.ts';
import type { Transport } from './transport.ts';
import { WebSocketTransport } from './ws.ts';

/** The transport for `options.transport`. */
export function createTransport(options: ResolvedOptions): Transport {
  if (options.transport === 'streamable') return new StreamableTransport(options);
  if (options.transport === 'ws') return new WebSocketTransport(options);
  return new HttpTransport(options);
}
