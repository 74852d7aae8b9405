/**
 * @module surfaces/client-bundle
 * `GET /client/mcp-proxy-client.js`: the browser client (packages/client) as one ESM file, served
 * by the proxy itself so a page can `import` it with no build step and no package registry
 * (issue #14.14). It is public code: no token, readable from any origin.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.ts';

/** Where the bundle is served. */
export const CLIENT_BUNDLE_ROUTE = '/client/mcp-proxy-client.js';

/**
 * The bundle `npm run build` (and `npm ci`, through the client's `prepare`) writes, found from
 * this file so it does not depend on the working directory: the two packages ship side by side
 * in the repository and in the Docker image.
 */
export const DEFAULT_CLIENT_BUNDLE_PATH = fileURLToPath(
  new URL('../../../client/dist/mcp-proxy-client.js', import.meta.url),
);

/**
 * The URL names no version, so a browser must come back for a new one after an upgrade: a day of
 * freshness, then a cheap revalidation through the ETag (304) instead of a year of `immutable`.
 */
const CACHE_CONTROL = 'public, max-age=86400';

/** Options of {@link clientBundleRoutes}. */
export interface ClientBundleOptions {
  /** The built bundle's path on disk. */
  readonly path: string;
}

interface LoadedBundle {
  readonly mtimeMs: number;
  readonly size: number;
  readonly body: Buffer;
  readonly etag: string;
}

/** Registers `GET /client/mcp-proxy-client.js` (and its HEAD). */
export async function clientBundleRoutes(app: FastifyInstance, options: ClientBundleOptions): Promise<void> {
  // Read once and kept while the file is unchanged; a rebuild is picked up without a restart.
  let loaded: LoadedBundle | undefined;
  const load = async (): Promise<LoadedBundle> => {
    try {
      const info = await stat(options.path);
      if (loaded?.mtimeMs === info.mtimeMs && loaded.size === info.size) return loaded;
      const body = await readFile(options.path);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      loaded = { mtimeMs: info.mtimeMs, size: info.size, body, etag };
      return loaded;
    } catch (error) {
      throw new ProxyError('client_not_built', undefined, { cause: error });
    }
  };

  app.get(CLIENT_BUNDLE_ROUTE, async (request, reply) => {
    // A module script from another origin is fetched in CORS mode: without this header the
    // browser refuses it. The file holds no secret and no credentials are involved, so `*`.
    reply.header('access-control-allow-origin', '*');
    reply.header('cross-origin-resource-policy', 'cross-origin');
    reply.header('x-content-type-options', 'nosniff');
    const bundle = await load();
    reply.header('cache-control', CACHE_CONTROL);
    reply.header('etag', bundle.etag);
    if (etagMatches(request.headers['if-none-match'], bundle.etag)) return reply.code(304).send();
    return reply.type('text/javascript; charset=utf-8').send(bundle.body);
  });
}

/** RFC 9110 §13.1.2: weak comparison against each listed tag, or `*`. */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}
