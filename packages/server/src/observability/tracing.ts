/**
 * @module observability/tracing
 * OpenTelemetry traces (issue 21), off by default. With an OTLP endpoint configured the proxy
 * loads the SDK (never before: the default configuration holds none of it, issue 16) and
 * exports a server span per inbound request, a client span per upstream HTTP call and per relay
 * hop, continuing an inbound W3C `traceparent` and passing one on.
 *
 * Nothing here touches OpenTelemetry's global API state (global tracer provider, context
 * manager, propagator): every app has its own provider, its own context (an AsyncLocalStorage)
 * and its own propagator, so tests build as many apps side by side as they like.
 *
 * With tracing off the callers test {@link Tracing.enabled} once and do nothing else: no span
 * objects, no hooks registered.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import { VERSION } from '../version.ts';

/** Tracing settings (config `tracing`, from the standard `OTEL_*` variables). */
export interface TracingSettings {
  /** `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL (`/v1/traces` is appended). */
  readonly endpoint?: string | undefined;
  /** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full traces URL, used as it is. */
  readonly tracesEndpoint?: string | undefined;
  /** `OTEL_TRACES_EXPORTER`: `otlp` switches tracing on (default endpoint), `none` off. */
  readonly exporter?: 'otlp' | 'none' | undefined;
  /** `OTEL_SERVICE_NAME`. */
  readonly serviceName: string;
  /** `OTEL_RECORD_SUBJECT`: put the caller's subject on server spans (off: privacy). */
  readonly recordSubject: boolean;
}

/** The OTLP/HTTP default of the specification when only `OTEL_TRACES_EXPORTER=otlp` is set. */
const DEFAULT_ENDPOINT = 'http://localhost:4318';

/** Where spans go, or undefined when tracing is off. */
export function tracesUrl(settings: TracingSettings): string | undefined {
  if (settings.exporter === 'none') return undefined;
  if (settings.tracesEndpoint) return settings.tracesEndpoint;
  const base = settings.endpoint ?? (settings.exporter === 'otlp' ? DEFAULT_ENDPOINT : undefined);
  return base === undefined ? undefined : `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** A span the proxy holds while its work runs. */
export interface ProxySpan {
  /** Adds attributes (never a token, an argument or a result); none once ended. */
  set(attributes: Attributes): void;
  /** Ends it; an error code (the registry's) marks it failed. */
  end(errorCode?: string): void;
  /** Headers that carry this span's context on (`traceparent`, `tracestate`). */
  headers(): Record<string, string>;
  /** Runs `fn` with this span as the parent of the spans it starts. */
  run<T>(fn: () => T): T;
}

/** The loaded OpenTelemetry parts an enabled {@link Tracing} uses. */
interface Loaded {
  readonly api: typeof import('@opentelemetry/api');
  readonly tracer: Tracer;
  readonly propagator: import('@opentelemetry/core').W3CTraceContextPropagator;
  readonly provider: import('@opentelemetry/sdk-trace').TracerProvider;
}

/** A trace context carried in headers or `_meta` (W3C names). */
export interface Carrier {
  readonly traceparent?: unknown;
  readonly tracestate?: unknown;
}

/** The proxy's tracer: one per app. */
export class Tracing {
  /** True when spans are exported; false: callers do nothing more. */
  readonly enabled: boolean;
  /** Whether server spans may carry the caller's subject. */
  readonly recordSubject: boolean;
  readonly #on: Loaded | undefined;
  readonly #current = new AsyncLocalStorage<Context>();

  /** Builds the tracer, loading the SDK only when an endpoint is configured. */
  static async create(settings: TracingSettings): Promise<Tracing> {
    const url = tracesUrl(settings);
    if (url === undefined) return new Tracing(undefined, settings.recordSubject);
    const [api, core, sdk, resources, otlp] = await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/core'),
      import('@opentelemetry/sdk-trace'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/exporter-trace-otlp-http'),
    ]);
    const provider = new sdk.TracerProvider({
      resource: resources.resourceFromAttributes({
        'service.name': settings.serviceName,
        'service.version': VERSION,
      }),
      // Sampling is the operator's call, not the caller's: a caller's traceparent with flags 00
      // would otherwise keep its requests out of the proxy's traces. Its trace is still continued.
      sampler: new sdk.ParentBasedSampler({
        root: new sdk.AlwaysOnSampler(),
        remoteParentNotSampled: new sdk.AlwaysOnSampler(),
      }),
      spanProcessors: [
        new sdk.BatchSpanProcessor({
          exporter: new otlp.OTLPTraceExporter({ url }),
          // Explicit, not the SDK's (environment-dependent) defaults: with a collector down, the
          // spans waiting to be sent are what the proxy holds, so their number is bounded here.
          maxQueueSize: MAX_QUEUED_SPANS,
          maxExportBatchSize: MAX_EXPORT_BATCH,
        }),
      ],
    });
    return new Tracing(
      {
        api,
        tracer: provider.getTracer('mcp-proxy', VERSION),
        propagator: new core.W3CTraceContextPropagator(),
        provider,
      },
      settings.recordSubject,
    );
  }

  /** Use {@link Tracing.create}; `loaded` undefined means off. */
  constructor(loaded: Loaded | undefined, recordSubject = false) {
    this.#on = loaded;
    this.enabled = loaded !== undefined;
    this.recordSubject = recordSubject;
  }

  /**
   * Starts a server span for an inbound request or message, continuing `carrier`'s trace when
   * it holds a valid `traceparent` (else a new trace).
   */
  server(name: string, carrier: Carrier | undefined, attributes: Attributes, startTime?: number): ProxySpan {
    const on = this.#loaded();
    let parent = on.api.ROOT_CONTEXT;
    if (carrier !== undefined && typeof carrier.traceparent === 'string') {
      parent = on.propagator.extract(on.api.ROOT_CONTEXT, carrier, CARRIER_GETTER);
    }
    return this.#start(on, name, on.api.SpanKind.SERVER, parent, attributes, startTime);
  }

  /** Starts a client span (an upstream call, a relay hop), a child of the span in force. */
  client(name: string, attributes: Attributes): ProxySpan {
    const on = this.#loaded();
    const parent = this.#current.getStore() ?? on.api.ROOT_CONTEXT;
    return this.#start(on, name, on.api.SpanKind.CLIENT, parent, attributes);
  }

  /** Sends the spans still buffered (shutdown). */
  async close(): Promise<void> {
    await this.#on?.provider.shutdown().catch(() => {});
  }

  /** Sends the spans buffered so far (tests). */
  async flush(): Promise<void> {
    await this.#on?.provider.forceFlush();
  }

  #start(
    on: Loaded,
    name: string,
    kind: import('@opentelemetry/api').SpanKind,
    parent: Context,
    attributes: Attributes,
    startTime?: number,
  ): ProxySpan {
    const span = on.tracer.startSpan(
      name,
      { kind, attributes, ...(startTime === undefined ? {} : { startTime }) },
      parent,
    );
    const context = on.api.trace.setSpan(parent, span);
    return new ActiveSpan(span, context, on, this.#current);
  }

  #loaded(): Loaded {
    if (this.#on === undefined) throw new Error('tracing is off: check Tracing.enabled first');
    return this.#on;
  }
}

/** Spans waiting for the exporter at most (the rest are dropped while a collector is slow). */
const MAX_QUEUED_SPANS = 2048;
/** Spans per export request. */
const MAX_EXPORT_BATCH = 512;

/**
 * Longest value of each W3C field read from a caller: a `traceparent` of version 00 is 55
 * characters, and W3C Trace Context caps what a `tracestate` must carry at 512. Longer ones are
 * ignored: OpenTelemetry's TraceState keeps the raw string, and every span of the request keeps
 * its TraceState until exported, so a caller's megabyte would be held per span (heap exhaustion).
 */
const MAX_CARRIED: Readonly<Record<string, number>> = { traceparent: 55, tracestate: 512 };

/** Reads a W3C field from headers (lower-case names) or a `_meta` object alike, within bounds. */
const CARRIER_GETTER = {
  get(carrier: Carrier, key: string): string | undefined {
    const value = (carrier as Record<string, unknown>)[key];
    if (typeof value !== 'string') return undefined;
    return value.length > (MAX_CARRIED[key] ?? 0) ? undefined : value;
  },
  keys(carrier: Carrier): string[] {
    return Object.keys(carrier);
  },
};

/** One span and the context it is the parent in. */
class ActiveSpan implements ProxySpan {
  readonly #span: Span;
  readonly #context: Context;
  readonly #on: Loaded;
  readonly #current: AsyncLocalStorage<Context>;
  #ended = false;

  constructor(span: Span, context: Context, on: Loaded, current: AsyncLocalStorage<Context>) {
    this.#span = span;
    this.#context = context;
    this.#on = on;
    this.#current = current;
  }

  set(attributes: Attributes): void {
    if (!this.#ended) this.#span.setAttributes(attributes);
  }

  end(errorCode?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (errorCode !== undefined) {
      this.#span.setAttribute('error.type', errorCode);
      this.#span.setStatus({ code: this.#on.api.SpanStatusCode.ERROR, message: errorCode });
    }
    this.#span.end();
  }

  headers(): Record<string, string> {
    const headers: Record<string, string> = {};
    this.#on.propagator.inject(this.#context, headers, {
      set(carrier, key, value) {
        carrier[key] = value;
      },
    });
    return headers;
  }

  run<T>(fn: () => T): T {
    return this.#current.run(this.#context, fn);
  }
}
