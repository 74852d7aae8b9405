/**
 * @module identity/audit-trail
 * The audit trail (issue 17): one JSON line per MCP request that reaches an upstream or is
 * refused by policy, on every surface (each element of a batch, each `/ws` message), saying who
 * (subject, how it authenticated), what (server, method, tool/prompt/resource name), how it
 * ended (`ok`, or the JSON-RPC or proxy error code) and how long it took. Never a token, a
 * result, or (unless the operator opts in) the arguments. Only built when `AUDIT_LOG` is set:
 * with it off, the surfaces meet one `undefined` check per request.
 */
import { ERROR_REGISTRY, ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import { hidesTool } from '../policy/grants.ts';
import type { AuthKind, Principal } from './principal.ts';

/** Where audit lines go: anything taking one string at a time (a pino destination, a test sink). */
export interface AuditDestination {
  write(line: string): unknown;
}

/** The surface a request came in on. */
export type AuditSurface = 'proxy' | 'mcp' | 'ws';

/** One audit line. */
export interface AuditRecord {
  readonly time: string;
  readonly requestId: string;
  readonly surface: AuditSurface;
  readonly subject: string;
  readonly auth: AuthKind;
  /** The principal's short, loggable handle. */
  readonly principal: string;
  /** A configured server's name, or the host of a raw URL. */
  readonly server: string | null;
  readonly method: string | null;
  /** The tool or prompt name, or the resource URI without query or fragment. */
  readonly name: string | null;
  /** The JSON-RPC id, when a short string or a number (to tell batch elements apart). */
  readonly rpcId?: string | number | undefined;
  /** `ok`, a proxy error code (`forbidden_tool`, `rate_limited`…) or an upstream JSON-RPC code. */
  readonly outcome: string | number;
  readonly durationMs: number;
  /** Only with `AUDIT_LOG_ARGUMENTS=true`. */
  readonly arguments?: unknown;
}

/** Settings of the trail. */
export interface AuditTrailOptions {
  readonly destination: AuditDestination;
  /** Whether lines carry `params.arguments`. */
  readonly arguments: boolean;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}

/** Writes audit lines; hands out per-request and per-socket recorders. */
export class AuditTrail {
  readonly #options: AuditTrailOptions;

  constructor(options: AuditTrailOptions) {
    this.#options = options;
  }

  /** A recorder for one HTTP request's messages (a batch: one line each). */
  begin(requestId: string, principal: Principal, surface: AuditSurface): RequestAudit {
    return new RequestAudit(this, { requestId, principal, surface });
  }

  /** A line for a refusal before any message was read (a `/ws` handshake). */
  refused(
    requestId: string,
    principal: Principal,
    surface: AuditSurface,
    server: string | null,
    error: unknown,
  ) {
    const started = this.now();
    this.write({ requestId, principal, surface }, server, undefined, outcomeOf(error), started);
  }

  /** Milliseconds since the epoch. */
  now(): number {
    return this.#options.now();
  }

  /** Writes one line. */
  write(
    who: Who,
    server: string | null,
    message: RequestFacts | undefined,
    outcome: string | number,
    started: number,
  ): void {
    const now = this.now();
    const record: AuditRecord = {
      time: new Date(now).toISOString(),
      requestId: who.requestId,
      surface: who.surface,
      subject: clip(who.principal.subject),
      auth: who.principal.auth,
      principal: who.principal.id,
      server,
      method: message?.method ?? null,
      name: message?.name ?? null,
      ...(message?.rpcId === undefined ? {} : { rpcId: message.rpcId }),
      outcome,
      durationMs: Math.max(0, now - started),
      ...(this.#options.arguments && message?.arguments !== undefined
        ? { arguments: message.arguments }
        : {}),
    };
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      // Arguments that cannot be written (a depth JSON.parse allowed but stringify cannot) are left out.
      line = JSON.stringify({ ...record, arguments: '[unserialisable]' });
    }
    this.#options.destination.write(`${line}\n`);
  }
}

/** Who a line is about. */
interface Who {
  readonly requestId: string;
  readonly principal: Principal;
  readonly surface: AuditSurface;
}

/** What a line says about one request message. */
interface RequestFacts {
  readonly method: string;
  readonly name: string | null;
  readonly rpcId: string | number | undefined;
  readonly arguments: unknown;
  /** The request itself, for the tool policy once the target is known. */
  readonly message: JsonRpcMessage;
}

interface Pending {
  readonly facts: RequestFacts;
  readonly started: number;
  outcome: string | number | undefined;
  refused: string | undefined;
}

/**
 * The requests of one HTTP exchange (or one `/ws` socket) until they end: each gets its line
 * when its answer is seen ({@link RequestAudit.answer}), or when the exchange finishes
 * ({@link RequestAudit.finish}: the outcome then comes from the error or the HTTP status).
 */
export class RequestAudit {
  readonly #trail: AuditTrail;
  readonly #who: Who;
  /** Requests without a line yet; a `/ws` socket's stay bounded by its in-flight limit. */
  readonly #pending = new Map<string | number | null, Pending>();
  #server: string | null = null;
  #tools: readonly string[] | undefined;
  #failure: string | undefined;
  #finished = false;
  /** Whether lines are written as answers arrive (a socket) or at the end (an HTTP exchange). */
  readonly #streaming: boolean;

  constructor(trail: AuditTrail, who: Who, streaming = false) {
    this.#trail = trail;
    this.#who = who;
    this.#streaming = streaming;
  }

  /** Names the target: a configured server, or a URL's host. */
  server(label: string | null): void {
    this.#server = label;
  }

  /**
   * The target the request resolved to, with the tools the caller may use: a call to another
   * is recorded as `forbidden_tool` (the caller itself sees an unknown tool).
   */
  target(label: string | null, tools: readonly string[] | undefined): void {
    this.#server = label;
    this.#tools = tools;
    if (tools === undefined) return;
    for (const pending of this.#pending.values()) {
      if (hidesTool(tools, pending.facts.message)) pending.refused = 'forbidden_tool';
    }
  }

  /** Records a message as it arrives; only requests get lines. */
  add(message: JsonRpcMessage): void {
    if (!('method' in message) || !('id' in message)) return;
    const facts = factsOf(message);
    const pending: Pending = { facts, started: this.#trail.now(), outcome: undefined, refused: undefined };
    if (this.#tools !== undefined && hidesTool(this.#tools, message)) pending.refused = 'forbidden_tool';
    const earlier = this.#pending.get(message.id);
    // A reused id: the earlier request's line is written now rather than lost.
    if (earlier) this.#emit(message.id, earlier, 'request_id_in_use');
    this.#pending.set(message.id, pending);
  }

  /** A request refused at once (its answer must not end another request under the same id). */
  refuseNow(message: JsonRpcMessage, error: unknown): void {
    if (!('method' in message) || !('id' in message)) return;
    const pending: Pending = {
      facts: factsOf(message),
      started: this.#trail.now(),
      outcome: outcomeOf(error),
      refused: undefined,
    };
    this.#write(pending);
  }

  /**
   * A message dropped unforwarded: a notification under a request's method
   * (policy/grants.ts `isRequestAsNotification`). Its line says `forbidden_tool` when it named a
   * tool the caller may not use, else `invalid_message`.
   */
  dropped(message: JsonRpcMessage & { method: string }): void {
    const facts = factsOf(message);
    const asCall = { ...message, id: 0 } as JsonRpcMessage;
    const outcome =
      this.#tools !== undefined && hidesTool(this.#tools, asCall) ? 'forbidden_tool' : 'invalid_message';
    this.#write({ facts, started: this.#trail.now(), outcome, refused: undefined });
  }

  /** An answer going back to the caller: its request's outcome. */
  answer(message: JsonRpcMessage | undefined): void {
    if (message === undefined || 'method' in message || !('id' in message)) return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    pending.outcome = 'error' in message ? rpcOutcome(message.error) : 'ok';
    if (this.#streaming) this.#emit(message.id, pending, undefined);
  }

  /** A request the caller cancelled (it gets no answer). */
  cancelled(id: string | number): void {
    const pending = this.#pending.get(id);
    if (pending) this.#emit(id, pending, 'cancelled');
  }

  /** The exchange failed as a whole (the error the caller got). */
  fail(error: unknown): void {
    this.#failure ??= outcomeOf(error);
  }

  /**
   * Writes the lines of every request still without one: their outcome is `unanswered` when
   * given (a socket closed first), else the exchange's failure or HTTP status.
   */
  finish(status?: number, unanswered?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    const fallback =
      unanswered ?? this.#failure ?? (status === undefined || status < 400 ? 'ok' : `http_${status}`);
    for (const [id, pending] of this.#pending) this.#emit(id, pending, pending.outcome ?? fallback);
  }

  #emit(id: string | number | null, pending: Pending, outcome: string | number | undefined): void {
    this.#pending.delete(id);
    if (outcome !== undefined && pending.outcome === undefined) pending.outcome = outcome;
    this.#write(pending);
  }

  #write(pending: Pending): void {
    const outcome = pending.refused ?? pending.outcome ?? this.#failure ?? 'ok';
    this.#trail.write(this.#who, this.#server, pending.facts, outcome, pending.started);
  }
}

/** A recorder for one `/ws` socket: a line per request as its answer goes out. */
export function socketAudit(
  trail: AuditTrail,
  requestId: string,
  principal: Principal,
  server: string | null,
  tools: readonly string[] | undefined,
): RequestAudit {
  const audit = new RequestAudit(trail, { requestId, principal, surface: 'ws' }, true);
  audit.target(server, tools);
  return audit;
}

/** The label of a target for audit lines: a configured server's name, or a URL's host. */
export function serverLabel(target: { readonly server: string } | { readonly url: string }): string | null {
  return 'server' in target ? target.server : (URL.parse(target.url)?.host ?? null);
}

/** The label of a resolved target: its configured name, or its URL's host. */
export function targetLabel(
  target:
    | { readonly kind: 'stdio'; readonly name: string }
    | { readonly name?: string | undefined; readonly url: URL },
): string {
  return 'url' in target ? (target.name ?? target.url.host) : target.name;
}

/**
 * The outcome of a failure: a policy refusal anywhere in the cause chain wins (a forbidden
 * server is answered as unknown, and the trail says why); else the proxy's code.
 */
export function outcomeOf(error: unknown): string {
  let first: ProxyError | undefined;
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (ProxyError.is(current)) {
      if (current.code.startsWith('forbidden_')) return current.code;
      first ??= current;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return first?.code ?? 'internal_error';
}

function rpcOutcome(error: { readonly code: number; readonly data?: unknown }): string | number {
  const data = error.data;
  const code = typeof data === 'object' && data !== null ? (data as { code?: unknown }).code : undefined;
  // The proxy's own errors carry their stable code; an upstream's keep its number.
  return typeof code === 'string' && Object.hasOwn(ERROR_REGISTRY, code) ? code : error.code;
}

function factsOf(message: JsonRpcMessage & { method: string }): RequestFacts {
  const params = (message as { params?: Record<string, unknown> }).params;
  const id = (message as { id?: unknown }).id;
  return {
    method: clip(message.method),
    name: nameOf(params),
    rpcId: typeof id === 'number' || (typeof id === 'string' && id.length <= 64) ? id : undefined,
    arguments: params?.arguments,
    message,
  };
}

/**
 * How long a caller-chosen text (a method, a name, a subject) may be in a line: a request may
 * name a 200 KB method, and the trail must not copy it (issue 17 review, finding 12).
 */
const FIELD_LIMIT = 256;

function clip(text: string): string {
  return text.length > FIELD_LIMIT ? text.slice(0, FIELD_LIMIT) : text;
}

/**
 * A tool or prompt name, or a resource URI without what may hold secrets: its query, its
 * fragment and its user info (`https://bob:hunter2@host/…`).
 */
function nameOf(params: Record<string, unknown> | undefined): string | null {
  if (params === undefined) return null;
  if (typeof params.name === 'string') return clip(params.name);
  if (typeof params.uri !== 'string') return null;
  const bare = params.uri.split(/[?#]/, 1)[0] ?? '';
  return clip(bare.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1'));
}
