/**
 * @module read-capped
 * Reads a fetched body up to a byte cap: a declared `Content-Length` over the cap is refused
 * before reading, and a body that grows past it is cancelled there. For small documents the
 * proxy fetches for itself (OIDC discovery and key sets, the OAuth flow's metadata and tokens),
 * where a hostile server could otherwise make it buffer without bound.
 */

/** The reader {@link readCapped} takes from a body (any `ReadableStream` of bytes has one). */
interface ChunkReader {
  read(): Promise<{ readonly done: boolean; readonly value?: unknown }>;
  cancel(): Promise<void>;
}

/**
 * What {@link readCapped} needs of a response: the global and undici's `Response` both fit (their
 * stream types differ, so only the two methods used are named).
 */
export interface CappedSource {
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): ChunkReader; cancel(): Promise<void> } | null;
}

/** The whole body, or an Error naming `label` when it is over `maxBytes`. */
export async function readCapped(
  response: CappedSource,
  maxBytes: number,
  label: string,
): Promise<ReturnType<typeof Buffer.concat>> {
  const tooLarge = () => new Error(`${label} sent more than ${maxBytes} bytes`);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body?.getReader();
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = value as Uint8Array;
    size += chunk.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
