/**
 * @module transport/create
 * Picks the transport for the `transport` option.
 */
import type { ResolvedOptions } from '../options.ts';
import { HttpTransport } from './http.ts';
import { StreamableTransport } from './streamable.ts';
import type { ServerListeners, Transport } from './transport.ts';
import { WebSocketTransport } from './ws.ts';

/**
 * The transport for `options.transport`; `listeners` receive what the server starts (POST /proxy
 * never delivers any).
 */
export function createTransport(options: ResolvedOptions, listeners: ServerListeners): Transport {
  if (options.transport === 'streamable') return new StreamableTransport(options, listeners);
  if (options.transport === 'ws') return new WebSocketTransport(options, listeners);
  return new HttpTransport(options);
}
