/**
 * @module egress/undici-parts
 * The parts of undici the proxy uses on every request path (issue #16: start-up memory), loaded
 * from their own files instead of undici's index. The index loads all of undici (fetch, caches,
 * mocks, cookies, WebSocket: ~110 files), and its cookie module reads `globalThis.Headers`, which
 * makes Node load its own bundled copy of undici too: ~4 MiB of RSS for nothing the proxy's
 * default paths use. The OAuth broker's fetch still comes from the index, loaded on first use
 * (credentials/guarded-fetch.ts). The types are the index's; test/undici-parts.test.ts checks
 * that these files still are what the index exports, so an undici upgrade that moves them fails
 * a test rather than a request.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

/** undici's `Agent`, from `undici/lib/dispatcher/agent.js`. */
export const Agent: typeof Undici.Agent = load('undici/lib/dispatcher/agent.js');

/** undici's `buildConnector`, from `undici/lib/core/connect.js`. */
export const buildConnector: typeof Undici.buildConnector = load('undici/lib/core/connect.js');

/** undici's request API, called with the dispatcher as `this` (what the index's `request` does). */
const dispatchRequest: (
  this: Undici.Dispatcher,
  options: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData> = load('undici/lib/api/api-request.js');

/** Options of {@link request}: undici's, with the dispatcher required (there is no global one). */
export type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  readonly method: Undici.Dispatcher.HttpMethod;
  readonly dispatcher: Undici.Dispatcher;
};

/** undici's `request(url, options)` through `options.dispatcher`. */
export function request(url: URL, options: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  return dispatchRequest.call(dispatcher, {
    ...rest,
    origin: url.origin,
    path: url.search ? `${url.pathname}${url.search}` : url.pathname,
  });
}
