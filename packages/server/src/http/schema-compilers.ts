/**
 * @module http/schema-compilers
 * Fastify's schema compilers (Ajv to validate, fast-json-stringify to serialise), loaded the first
 * time a route declares a schema. No route of the proxy declares one (bodies are checked by hand,
 * on the hot path), so a running proxy never loads them: about 2.5 MiB of RSS and 100 modules at
 * start-up (issue #16), for the same behaviour.
 */
import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

/** The builders Fastify accepts in `schemaController.compilersFactory`. */
type CompilersFactory = NonNullable<
  NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
>;
/** A compiler factory, as both packages export it: called once, it returns the pooled builder. */
type Builder = (schemas: unknown, options: unknown) => unknown;

/** Fastify's default compilers, each required on its first use (one pool per app, as Fastify's own). */
export function lazySchemaCompilers(): Required<CompilersFactory> {
  // They are Fastify's dependencies, not ours: resolve them from its folder.
  const fromFastify = createRequire(import.meta.resolve('fastify'));
  const onFirstUse = (name: string): Builder => {
    let built: Builder | undefined;
    return (schemas, options) => {
      built ??= (fromFastify(name) as () => Builder)();
      return built(schemas, options);
    };
  };
  return {
    buildValidator: onFirstUse('@fastify/ajv-compiler') as Required<CompilersFactory>['buildValidator'],
    buildSerializer: onFirstUse(
      '@fastify/fast-json-stringify-compiler',
    ) as Required<CompilersFactory>['buildSerializer'],
  };
}
