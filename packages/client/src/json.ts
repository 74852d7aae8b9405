/**
 * @module json
 * The two checks every reader of the proxy's answers needs: is this a JSON object, and what
 * does this text parse to (undefined rather than a throw, since a bad body is an answer too).
 */

/** True for a non-null, non-array object. */
export function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `text` parsed as JSON, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
