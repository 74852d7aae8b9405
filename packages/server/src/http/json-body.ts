/**
 * @module http/json-body
 * The JSON body parser of every route: Fastify's own (with its prototype-poisoning checks)
 * behind the proxy's nesting cap (`MAX_JSON_DEPTH`, json-depth.ts). A body nested deeper is
 * refused where it enters, as `json_too_deep` (400), instead of failing later as an
 * `internal_error` when it is serialized for the upstream (issue 14, finding 10).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import { exceedsJsonDepth } from '../json-depth.ts';

/**
 * Replaces the `application/json` parser with the depth-capped one. `beforeParse` runs once the
 * body text has arrived and before it becomes objects (parsed, a body takes up to ~20 times its
 * size in heap): it may throw a {@link ProxyError} to refuse the request there.
 */
export function registerJsonBodyParser(
  app: FastifyInstance,
  beforeParse: (request: FastifyRequest) => void = () => {},
): void {
  // Fastify's defaults: a `__proto__` or `constructor.prototype` key is a refused body.
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    try {
      beforeParse(request);
    } catch (error) {
      done(error as Error, undefined);
      return;
    }
    if (exceedsJsonDepth(body as string)) {
      done(new ProxyError('json_too_deep'), undefined);
      return;
    }
    parse(request, body as string, done);
  });
}
