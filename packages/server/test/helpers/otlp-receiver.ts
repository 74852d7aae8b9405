/**
 * An OTLP/HTTP traces receiver (JSON encoding, gzip or not) on loopback, decoding each span as a
 * collector would; the tracing tests read what the proxy exported from it. Run on its own it is
 * the local collector of docs/observability.md: it prints one line per span received.
 *
 *   npx node packages/server/test/helpers/otlp-receiver.ts [port]   # default 4318
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One exported span, flattened from OTLP JSON. */
export interface ExportedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly status: { code?: number; message?: string } | undefined;
  readonly start: bigint;
  readonly end: bigint;
}

/** OTLP span kinds. */
export const SERVER = 2;
export const CLIENT = 3;

/** A running receiver: its origin (the proxy's OTEL_EXPORTER_OTLP_ENDPOINT) and what it got. */
export interface OtlpReceiver {
  readonly origin: string;
  readonly spans: ExportedSpan[];
  /** Each export request's body, as text. */
  readonly raw: string[];
  stop(): Promise<void>;
}

/** A request's body, whole. */
export function bodyOf(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Starts a receiver on `port` of 127.0.0.1 (0: any); `heard` sees each span as it arrives. */
export async function startReceiver(port = 0, heard?: (span: ExportedSpan) => void): Promise<OtlpReceiver> {
  const spans: ExportedSpan[] = [];
  const raw: string[] = [];
  const server = createServer(async (req, res) => {
    let body = await bodyOf(req);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    if (req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('json')) {
      res.writeHead(415).end();
      return;
    }
    const text = body.toString();
    raw.push(text);
    // biome-ignore lint/suspicious/noExplicitAny: OTLP JSON.
    const payload = JSON.parse(text) as any;
    for (const resource of payload.resourceSpans ?? [])
      for (const scope of resource.scopeSpans ?? [])
        for (const span of scope.spans ?? []) {
          const attributes: Record<string, unknown> = {};
          for (const { key, value } of span.attributes ?? [])
            attributes[key] = value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue;
          const decoded: ExportedSpan = {
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? '',
            name: span.name,
            kind: span.kind,
            attributes,
            status: span.status,
            start: BigInt(span.startTimeUnixNano),
            end: BigInt(span.endTimeUnixNano),
          };
          spans.push(decoded);
          heard?.(decoded);
        }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    spans,
    raw,
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.main) {
  const receiver = await startReceiver(Number(process.argv[2] ?? 4318), (span) => {
    const { traceId, spanId, parentSpanId, name, attributes, status, start, end } = span;
    const ms = Number(end - start) / 1e6;
    console.log(JSON.stringify({ traceId, spanId, parentSpanId, name, ms, status, attributes }));
  });
  console.error(`OTLP/HTTP receiver on ${receiver.origin} (POST /v1/traces, JSON)`);
}
