/**
 * @module json-object
 * Reading JSON text that someone else wrote (the shared store, another instance's pub/sub
 * message): an object or nothing, never an exception. What the object holds is the caller's to
 * check, field by field.
 */

/** `text` parsed when it is a JSON object (not an array, not null); else undefined. */
export function parseJsonObject(text: string): object | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}
