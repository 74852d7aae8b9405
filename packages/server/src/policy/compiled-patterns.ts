/**
 * @module policy/compiled-patterns
 * A grant's URL patterns, compiled once and kept: every raw-URL request is matched against its
 * principal's patterns, and compiling a pattern again each time cost more than matching (review
 * 12: 64 patterns against a 2 KB URL). Kept by pattern text, in bounded number.
 */
import { TtlCache, type TtlCacheOptions } from '../ttl-cache.ts';
import { type CompiledPattern, compilePattern, formMatches, matchedForm } from './url-pattern.ts';

/**
 * How many compiled patterns are kept, and how long (a compiled pattern never goes stale: the
 * lifetime only lets a quiet proxy forget): a token holds at most 64 patterns.
 */
export const COMPILED_PATTERNS_DEFAULTS: TtlCacheOptions = { ttlMs: 3_600_000, maxEntries: 256 };

/** URL patterns by their text, compiled ({@link compilePattern}). */
export class CompiledPatterns {
  readonly #compiled: TtlCache<string, CompiledPattern>;

  constructor(options: TtlCacheOptions = COMPILED_PATTERNS_DEFAULTS) {
    this.#compiled = new TtlCache(options);
  }

  /** Whether any of `patterns` matches the URL `raw` (parsed once, whatever their number). */
  matchesAny(patterns: readonly string[], raw: string): boolean {
    const form = matchedForm(raw);
    return form !== undefined && patterns.some((pattern) => formMatches(this.#get(pattern), form));
  }

  #get(pattern: string): CompiledPattern {
    const held = this.#compiled.get(pattern);
    if (held !== undefined) return held;
    const compiled = compilePattern(pattern);
    this.#compiled.set(pattern, compiled);
    return compiled;
  }
}
