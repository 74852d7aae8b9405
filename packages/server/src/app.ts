/**
 * @module app
 * `buildApp(config, deps)` assembles the proxy: logger, auth, CORS, egress guard, upstream
 * HTTP, sessions and routes. Nothing lives at module level, so tests build as many apps side
 * by side as they like.
 */
import { randomUUID } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import { type Clock, SYSTEM_CLOCK } from './clock.ts';
import type { Config } from './config/config.ts';
import { OAuthBroker, oauthSettingsOf } from './credentials/broker.ts';
import { guardedFetch } from './credentials/guarded-fetch.ts';
import { VaultKeys } from './credentials/vault-keys.ts';
import { UpstreamConnector, type UpstreamTarget } from './dispatch/connector.ts';
import { EraDetector, EraVerdicts } from './dispatch/era-detector.ts';
import { HeldSessions } from './dispatch/held-sessions.ts';
import { DispatchPlanner } from './dispatch/plan.ts';
import { TargetResolver } from './dispatch/targets.ts';
import { TransportVerdicts } from './dispatch/transport-verdicts.ts';
import { VET_CACHE_DEFAULTS } from './dispatch/vet-cache.ts';
import { ReloadableGuard } from './egress/reloadable-guard.ts';
import type { Resolver } from './egress/types.ts';
import { type ErrorCode, ProxyError } from './errors.ts';
import { ConnectionDrain } from './http/connection-drain.ts';
import { corsOptions } from './http/cors.ts';
import { registerJsonBodyParser } from './http/json-body.ts';
import { registerErrorHandlers, registerRequestLogging } from './http/observe.ts';
import { type Inject, Relay } from './http/relay.ts';
import { lazySchemaCompilers } from './http/schema-compilers.ts';
import { registerAuditHooks } from './identity/audit-hooks.ts';
import { openAuditSink } from './identity/audit-sink.ts';
import { type AuditDestination, AuditTrail } from './identity/audit-trail.ts';
import { Authenticator, type BearerVerifier } from './identity/authenticator.ts';
import { CredentialHoldings } from './identity/credential-holdings.ts';
import { proxyTokenHook } from './identity/hook.ts';
import { LiveRequests, type MayKeep } from './identity/live-requests.ts';
import { MintRecords } from './identity/mint-records.ts';
import { MintedTokens } from './identity/minted-tokens.ts';
import { boundedJsonFetcher } from './identity/oidc/fetch-json.ts';
import { oidcIssuers, oidcTiming } from './identity/oidc/settings.ts';
import { OidcVerifier } from './identity/oidc/verifier.ts';
import { Revocations } from './identity/revocations.ts';
import { SigningKeys } from './identity/signing-keys.ts';
import { TokenVerifier } from './identity/tokens.ts';
import { serverDeadlines } from './limits/connection-deadlines.ts';
import { InFlightLimits } from './limits/in-flight.ts';
import { inFlightHooks } from './limits/in-flight-hooks.ts';
import {
  type ClassLimitName,
  type RateClasses,
  RateLimiter,
  type RateLimits,
  type RateRule,
} from './limits/rate-limiter.ts';
import type { RateStore } from './limits/rate-store.ts';
import { createLogger, lazyChildLoggerFactory } from './observability/logger.ts';
import { ProxyMetrics } from './observability/metrics.ts';
import type { HeldSession } from './sessions/held-session.ts';
import { ModernSessionPool } from './sessions/modern-pool.ts';
import { SessionOwnership } from './sessions/ownership.ts';
import { configuredSecrets, sealerSecrets } from './sessions/sealer-key.ts';
import { SessionIdSealer } from './sessions/session-id-sealer.ts';
import { PROXY_SESSION_PREFIX, SessionStore } from './sessions/store.ts';
import { openStore, storeKind } from './store/open-store.ts';
import { namespaced, type Store } from './store/store.ts';
import { authRoutes } from './surfaces/auth/routes.ts';
import { clientBundleRoutes, DEFAULT_CLIENT_BUNDLE_PATH } from './surfaces/client-bundle.ts';
import { healthRoutes } from './surfaces/health.ts';
import { infoRoutes } from './surfaces/info.ts';
import { McpEndpoint } from './surfaces/mcp/endpoint.ts';
import { HeldSessionHandler } from './surfaces/mcp/held-session-handler.ts';
import { PassThrough } from './surfaces/mcp/passthrough.ts';
import { PooledSessionHandler } from './surfaces/mcp/pooled-session-handler.ts';
import { mcpRoutes } from './surfaces/mcp/routes.ts';
import { metricsRoutes } from './surfaces/metrics.ts';
import { oauthRoutes } from './surfaces/oauth/routes.ts';
import { Forwarder } from './surfaces/proxy/forwarder.ts';
import { proxyRoutes } from './surfaces/proxy/routes.ts';
import {
  resourceMetadataRoutes,
  resourceOf,
  resourceUrls,
  withBearerChallenge,
} from './surfaces/resource-metadata.ts';
import { registerWebSocket } from './surfaces/ws/routes.ts';
import { ChildRegistry } from './upstream/child-registry.ts';
import { UpstreamHttp } from './upstream/http.ts';
import { ParamHeaderCatalog } from './upstream/param-headers.ts';

/** While draining, a keep-alive connection idle this long is closed (its client is not using it). */
const DRAIN_IDLE_MS = 250;

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Applies a new configuration without dropping sessions (SIGHUP). Returns the changed
     * settings that only take effect after a restart. Throws, changing nothing, if invalid.
     */
    reload(config: Config): string[];
    /**
     * The first steps of a graceful stop (issue 19): `ready` false makes `/ready` answer 503 and
     * every answer carry `Connection: close` while requests are still served; `quiet` then stops
     * accepting connections, ends the streams that never end by themselves and waits (at most
     * `boundMs`) for the open connections to finish. `close()` ends the rest.
     */
    drain: { unready(): void; quiet(boundMs: number): Promise<void> };
  }
  interface FastifyRequest {
    /** MCP method of the forwarded message, for the access log. */
    mcpMethod: string | undefined;
    /** Upstream host, for the access log. */
    targetHost: string | undefined;
    /** Stable error code of a failed request, for the access log. */
    errorCode: ErrorCode | undefined;
  }
}

/** Injectable collaborators (tests use them; production takes the defaults). */
export interface AppDeps {
  /** Where log lines go (default: stdout). */
  readonly logDestination?: DestinationStream;
  /** DNS resolver for the egress guard. */
  readonly resolver?: Resolver;
  /** Registry of live stdio children; main.ts passes its own to kill them on a forced exit. */
  readonly children?: ChildRegistry;
  /** The built browser client served at /client/mcp-proxy-client.js (default: packages/client/dist). */
  readonly clientBundlePath?: string;
  /** The shared store, instead of the one the config names (tests). The app closes it. */
  readonly store?: Store;
  /** Where rate-limit counters live, instead of the store (tests: a slow store). */
  readonly rateStore?: RateStore;
  /** More bearer-token verifiers (OIDC), tried for JWTs the proxy did not mint. */
  readonly bearerVerifiers?: readonly BearerVerifier[];
  /**
   * Time for rate windows, idle sessions and caches (default: the system clock). Tests pass one
   * they can move forward, instead of sleeping; a Redis store keeps Redis's own time.
   */
  readonly clock?: Clock;
  /** How the OIDC verifier reads discovery documents and key sets (default: bounded `fetch`). */
  readonly oidcFetch?: (url: string) => Promise<unknown>;
  /** Where audit lines go instead of `AUDIT_LOG`'s stdout or file (tests: a slow sink). */
  readonly auditDestination?: AuditDestination;
}

const VERDICT_TTL_MS = 10 * 60_000;
const VERDICT_MAX_ENTRIES = 1_000;
/** Bytes an outbound event stream may queue for a slow reader before it is closed. */
const STREAM_QUEUE_BYTES = 4 * 1_048_576;
/** Interval of keep-alive comments on outbound event streams. */
const STREAM_HEARTBEAT_MS = 25_000;
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** Settings a reload cannot change: they need a restart. */
const RESTART_SETTINGS = [
  'host',
  'port',
  'bodyLimitBytes',
  'server',
  'upstream',
  'sessions',
  'websocket',
  'trustedProxies',
  'sessionSecret',
  'sessionSecretPrevious',
  'allowQueryToken',
  'corsMaxAgeSeconds',
  'redisUrl',
  'store',
  'dataDir',
  'metricsToken',
  'logFormat',
  'limits',
  'auditLog',
  'auditLogArguments',
] as const satisfies ReadonlyArray<keyof Config>;

/** A warning logged at most once a minute (a dead dependency must not flood the log). */
function throttledWarning(logger: Logger, message: string): (error: Error) => void {
  let last = 0;
  return (error) => {
    if (Date.now() - last < 60_000) return;
    last = Date.now();
    logger.warn({ reason: error.message }, message);
  };
}

/**
 * The owners whose tool grant a reload changes: config tokens whose `tools` changed. What they
 * have open (a socket, a stream) was admitted under the old grant, so it ends (issue 17 and its
 * review, finding 2), as what a reload takes away always does. Held sessions take each request's
 * current grant anyway. OIDC principals are not listed: which of them a changed mapping narrows
 * is in their tokens, so each holding is re-verified instead (`holdings.recheckAll`; a socket
 * whose tool grant changed ends there).
 */
function retooledPrincipals(before: Config, after: Config): (ownerId: string) => boolean {
  const tools = (tokens: Config['tokens']) =>
    new Map(tokens.map((token) => [token.sha256.toLowerCase(), JSON.stringify(token.tools ?? null)]));
  const old = tools(before.tokens);
  const keys = new Set<string>();
  for (const [digest, granted] of tools(after.tokens)) {
    if (old.has(digest) && old.get(digest) !== granted) keys.add(`static:${digest}`);
  }
  // OIDC principals are judged again one by one (their tokens re-verified under the new mapping:
  // holdings.recheckAll), and held sessions apply the current caller's tools on every request.
  return (ownerId) => keys.has(ownerId);
}

/** The rate classes of a configuration, as rules (a class's unset fields keep the defaults). */
function rateClasses(config: Config): RateClasses {
  const classes: Record<string, Partial<Record<ClassLimitName, RateRule>>> = {};
  for (const [name, rate] of Object.entries(config.rateClasses)) {
    const windowMs = rate.windowMs ?? config.rateLimits.windowMs;
    const rules: Partial<Record<ClassLimitName, RateRule>> = {};
    if (rate.requestsPerWindow !== undefined)
      rules.requestsPerToken = { max: rate.requestsPerWindow, windowMs };
    if (rate.wsMessagesPerWindow !== undefined)
      rules.wsMessagesPerToken = { max: rate.wsMessagesPerWindow, windowMs };
    if (rate.sessionsPerWindow !== undefined)
      rules.sessionsPerToken = { max: rate.sessionsPerWindow, windowMs };
    classes[name] = rules;
  }
  return classes;
}

/** The rate limits a configuration asks for. */
function rateLimits(config: Config): RateLimits {
  const rates = config.rateLimits;
  const rule = (max: number) => ({ max, windowMs: rates.windowMs });
  return {
    requestsPerToken: rule(rates.requestsPerToken),
    requestsPerIp: rule(rates.requestsPerIp),
    wsMessagesPerToken: rule(rates.wsMessagesPerToken),
    sessionsPerToken: rule(rates.sessionsPerToken),
    authFailuresPerIp: rule(rates.authFailuresPerIp),
  };
}

/** Builds the proxy's Fastify instance (not yet listening). */
export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const logger = createLogger(config.logLevel, deps.logDestination);
  const clock = deps.clock ?? SYSTEM_CLOCK;
  const now = () => clock.now();
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Our own onResponse hook writes the one line per request; Fastify's own lines are off.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLoggerFactory,
    bodyLimit: config.bodyLimitBytes,
    ...serverDeadlines(config.server),
    forceCloseConnections: 'idle',
    // X-Forwarded-For is believed only from the operator's own reverse proxies.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    return503OnClosing: false,
    schemaController: { compilersFactory: lazySchemaCompilers() },
    requestIdHeader: false,
    genReqId: (raw) => {
      const incoming = raw.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  });

  app.server.maxConnections = config.server.maxConnections;

  const guard = new ReloadableGuard(config.egress, {
    connectTimeoutMs: config.upstream.connectTimeoutMs,
    agent: { connections: config.upstream.maxConnectionsPerOrigin },
    ...(deps.resolver ? { resolver: deps.resolver } : {}),
  });
  let openSockets = () => 0;
  const metrics = await ProxyMetrics.create(
    { sessions: () => sessions.size, sockets: () => openSockets() },
    { enabled: config.metricsToken !== undefined },
  );
  const http = new UpstreamHttp(guard, {
    timeoutMs: config.upstream.timeoutMs,
    responseLimitBytes: config.upstream.responseLimitBytes,
    onTiming: (outcome, seconds) => metrics.upstream(outcome, seconds),
  });
  // One store for shared state (issue 17): rate counters, revocations, and what issues 18 and 19
  // add; a test may pass its own, or a rate store of its own (a slow one).
  let store: Store;
  if (deps.store) store = deps.store;
  else {
    const opened = await openStore(config, {
      clock,
      onError: throttledWarning(
        logger,
        'shared store (Redis) unreachable: rate-limit store unreachable, limits not enforced',
      ),
    });
    if (!opened.ready) logger.warn('Redis (REDIS_URL) is not reachable yet; limits apply once it is');
    store = opened.store;
  }
  const rateStore: RateStore = deps.rateStore ?? namespaced(store, 'rate:');
  const limiter = new RateLimiter(
    rateStore,
    rateLimits(config),
    (name) => metrics.refusal(`rate_limit:${name}`),
    rateClasses(config),
  );
  const inFlight = new InFlightLimits(
    {
      perOwner: config.limits.inFlightPerToken,
      total: config.limits.inFlightTotal,
      shedHeapPercent: config.limits.shedHeapPercent,
    },
    { onRefused: (reason) => metrics.refusal(`in_flight:${reason}`) },
  );
  const inFlightHook = inFlightHooks(inFlight, config.limits.maxBatchMessages);
  // Origin and Host rules shared by CORS, /mcp and /ws; a reload updates them in place.
  const access = {
    corsOrigins: config.corsOrigins,
    corsAllowedHeaders: config.corsAllowedHeaders,
    trustedHosts: config.trustedHosts,
    bindHost: config.host,
    allowMissingOrigin: config.websocket.allowMissingOrigin,
  };
  const verifier = new TokenVerifier(config.proxyTokens, config.tokens, config.adminToken);
  let publicUrl = config.publicUrl;
  const oidc = new OidcVerifier(oidcIssuers(config), oidcTiming(config), {
    fetchJson: deps.oidcFetch ?? boundedJsonFetcher(),
    clock,
    // Only under PUBLIC_URL: a Host-derived URL would let a token for another service pass here.
    resourceAudiences: () =>
      publicUrl === undefined ? [] : resourceUrls(publicUrl, Object.keys(currentServers)),
  });
  const resourceMetadata = { issuers: () => oidc.issuers, publicUrl: () => publicUrl };
  const auditSink =
    deps.auditDestination === undefined && config.auditLog !== 'off'
      ? openAuditSink(config.auditLog, (message) => logger.warn(message))
      : undefined;
  const auditDestination = deps.auditDestination ?? auditSink;
  const audit =
    auditDestination === undefined
      ? undefined
      : new AuditTrail({ destination: auditDestination, arguments: config.auditLogArguments, now });
  // Minted tokens (issue 17): keys (a generated one stays in memory with STORE=memory), the
  // revocations in the shared store, what each token holds open, and the one authenticator.
  const signingKeySettings = (c: Config) => ({
    signingKeys: c.signingKeys,
    dataDir: c.dataDir,
    ephemeral: storeKind(c) === 'memory',
  });
  const signingKeys = new SigningKeys(signingKeySettings(config), now);
  const minted = new MintedTokens(signingKeys, now);
  const revocations = new Revocations(namespaced(store, 'revoked:'), now);
  const holdings = new CredentialHoldings(clock, (id) => revocations.knownRevoked(id));
  const authenticator = new Authenticator({
    statics: verifier,
    minted,
    revocations,
    now,
    verifiers: [oidc, ...(deps.bearerVerifiers ?? [])],
  });
  /** Whether an owner may keep what it opened: an OIDC subject while its issuer is configured. */
  const ownerKnown = (ownerId: string): boolean =>
    ownerId.startsWith('oidc:') ? oidc.knowsOwner(ownerId) : authenticator.knows(ownerId);
  const sessions = new SessionStore<HeldSession>({
    ...config.sessions,
    clock,
    admit: (ownerId, rateClass) => limiter.consume('sessionsPerToken', ownerId, rateClass),
    ownerValid: ownerKnown,
  });
  // `targets` is built further down; a recheck runs only after a request has named its target.
  const live = new LiveRequests(ownerKnown, holdings, (grants, targetKey) =>
    targets.stillReaches(targetKey, grants, new Set()),
  );
  // A revocation (here or announced by another instance) ends what the token holds: its sockets,
  // streams and the proxy-held sessions it opened.
  revocations.onRevoked((credentialId) => {
    authenticator.forgetCredential(credentialId);
    holdings.endCredential(credentialId);
  });
  // Revocations announced while this instance was not listening were never heard: every token
  // verified so far is checked against the store again, and what one holds ends if it was revoked.
  revocations.onResync(() => {
    authenticator.forgetVerified();
    void holdings.recheckAll().catch(() => {});
  });
  /**
   * Registers a proxy-held session a minted token was answered with, so its revocation ends it;
   * and claims the session for this instance before its id leaves (issue 19).
   */
  const holdSession = (
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: Error | null, payload: unknown) => void,
  ) => {
    const principal = request.identity;
    const id = reply.getHeader('mcp-session-id');
    if (
      principal?.credentialId !== undefined &&
      typeof id === 'string' &&
      id.startsWith(PROXY_SESSION_PREFIX) &&
      // A session relayed from another instance is held (and ended on revocation) there.
      sessions.has(id)
    ) {
      holdings.hold(principal, () => void sessions.delete(id), {
        endsAtExpiry: false,
        key: id,
        alive: () => sessions.has(id),
      });
    }
    // Its ownership is recorded before the id reaches the caller (issue 19).
    relay.claim(request, reply, payload, done);
  };
  // Listening starts before the first request where the store answers; a Redis that is down
  // must not hold the start-up (the subscription completes when Redis comes back).
  const listening = revocations.start().then(
    () => true,
    (error: Error) => {
      logger.warn({ reason: error.message }, 'revocations from other instances are not heard');
      return true;
    },
  );
  let waited: NodeJS.Timeout | undefined;
  const subscribed = await Promise.race([
    listening,
    new Promise<false>((resolve) => {
      waited = setTimeout(() => resolve(false), 2_000);
    }),
  ]);
  clearTimeout(waited);
  if (!subscribed)
    logger.warn('the shared store is not answering: revocations from other instances are heard once it does');
  // Any instance serves any request (issue 19): who holds which session, and the relay to it.
  const storeTrouble = throttledWarning(
    logger,
    'shared store unreachable: sessions held elsewhere not found',
  );
  const ownership = new SessionOwnership({
    store: namespaced(store, 'instances:'),
    holdsLocally: (id) => sessions.has(id),
    onError: storeTrouble,
  });
  // Only a store other processes share can lead to another instance: with the embedded ones
  // (SQLite, memory) there is none, and nothing is written before it is needed.
  const shared = deps.store !== undefined || !['sqlite', 'memory'].includes(storeKind(config));
  const relay = new Relay({
    store: namespaced(store, 'relay:'),
    ownership,
    inject: (options) => app.inject(options) as unknown as ReturnType<Inject>,
    onError: storeTrouble,
    active: shared,
  });
  if (shared)
    await Promise.race([
      Promise.allSettled([ownership.start(), relay.start()]),
      new Promise((resolve) => setTimeout(resolve, 2_000).unref()),
    ]);
  const verdicts = new TransportVerdicts({ ttlMs: VERDICT_TTL_MS, maxEntries: VERDICT_MAX_ENTRIES, now });
  const paramHeaders = new ParamHeaderCatalog({ now });
  const eras = new EraDetector({
    http,
    verdicts: new EraVerdicts({ ttlMs: VERDICT_TTL_MS, maxEntries: VERDICT_MAX_ENTRIES, now }),
    timeoutMs: config.upstream.timeoutMs,
  });
  let currentServers = config.servers;
  const targets = new TargetResolver(config.servers, guard, { ...VET_CACHE_DEFAULTS, now });
  const connector = new UpstreamConnector({
    guard,
    http,
    logger,
    timeoutMs: config.upstream.timeoutMs,
    responseLimitBytes: config.upstream.responseLimitBytes,
    verdicts,
    paramHeaders,
    eras,
    // A call waiting on a modern client's input is held as long as an idle session would be.
    inputDeadlineMs: config.sessions.idleTimeoutMs,
    children: deps.children ?? new ChildRegistry(),
    handleTag: ownership.instanceId,
  });
  const held = new HeldSessions({ sessions, connector });
  const pool = new ModernSessionPool<UpstreamTarget>({
    sessions,
    open: (owner, target) => held.open(owner, target),
  });
  const stream = { maxQueuedBytes: STREAM_QUEUE_BYTES, heartbeatMs: STREAM_HEARTBEAT_MS };
  const sealer = new SessionIdSealer(
    shared
      ? await sealerSecrets(config, namespaced(store, 'sessions:'), storeTrouble)
      : configuredSecrets(config),
  );
  const planner = new DispatchPlanner({ verdicts, eras });
  // The upstream OAuth broker (issue 18): tokens sealed in the shared store, every call through
  // the guard; it acts only with PUBLIC_URL set (the callback must be reachable).
  const broker = new OAuthBroker({
    store: namespaced(store, 'oauth:'),
    keys: new VaultKeys({
      vaultKeys: config.vaultKeys,
      dataDir: config.dataDir,
      ephemeral: storeKind(config) === 'memory',
    }),
    fetch: guardedFetch(guard),
    switchedOn: () => current.oauthBroker,
    publicUrl: () => publicUrl,
    server: (name) =>
      Object.hasOwn(currentServers, name) ? oauthSettingsOf(currentServers[name]) : undefined,
    now,
  });
  const forwarder = new Forwarder({
    broker,
    targets,
    http,
    planner,
    held,
    sessions,
    timeoutMs: config.upstream.timeoutMs,
    paramHeaders,
    pool,
    sealer,
  });
  const shutdown = new AbortController();
  const mcp = new McpEndpoint({
    targets,
    planner,
    http,
    sealer,
    passThrough: new PassThrough(http, sealer),
    bridge: new HeldSessionHandler({
      sessions,
      held,
      timeoutMs: config.upstream.timeoutMs,
      stream,
    }),
    modern: new PooledSessionHandler({ pool, paramHeaders, timeoutMs: config.upstream.timeoutMs, stream }),
    inbound: access,
    timeoutMs: config.upstream.timeoutMs,
    shutdown: shutdown.signal,
    broker,
  });
  let shuttingDown = false;
  // SIGTERM's first phase: still serving, but no longer ready (issue 19, rolling restarts).
  let draining = false;

  // JSON only: a text/plain body is a client mistake (415), not a string envelope.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app, inFlightHook.beforeParse);
  app.decorateRequest('identity', undefined);
  app.decorateRequest('audit', undefined);
  app.decorateRequest('credentialInAuthorization', false);
  app.decorateRequest('recheckCredential', undefined);
  app.decorateRequest('mcpMethod', undefined);
  app.decorateRequest('targetHost', undefined);
  app.decorateRequest('errorCode', undefined);
  app.decorateRequest('targetKey', undefined);

  await app.register(fastifyCors, () => corsOptions(access, config.corsMaxAgeSeconds));

  // Callback-style hooks: an async one costs a promise and a microtask on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // Issue #14.10: whatever a body holds (relayed upstream content too), never sniff it as HTML.
    reply.header('x-content-type-options', 'nosniff');
    const refused = shuttingDown && request.url !== '/health' && request.url !== '/ready';
    done(refused ? new ProxyError('shutting_down') : undefined);
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    // Requests that finish during shutdown must not leave a keep-alive socket holding close() open.
    if (shuttingDown || draining) reply.header('connection', 'close');
    done(null, payload);
  });
  registerRequestLogging(app, metrics);
  registerErrorHandlers(app);

  await app.register(infoRoutes);
  await app.register(clientBundleRoutes, { path: deps.clientBundlePath ?? DEFAULT_CLIENT_BUNDLE_PATH });
  if (config.metricsToken)
    await app.register(metricsRoutes, { metrics, token: config.metricsToken, limiter });
  await app.register(healthRoutes, { shuttingDown: () => shuttingDown || draining });
  await app.register(resourceMetadataRoutes, resourceMetadata);
  await app.register(oauthRoutes, broker);
  await app.register(async (scope) => {
    scope.addHook(
      'onRequest',
      relay.trusting(proxyTokenHook(authenticator, limiter, undefined, () => publicUrl)),
    );
    if (audit) registerAuditHooks(scope, audit, 'proxy');
    scope.addHook('onRequest', live.hook());
    scope.addHook('onRequest', inFlightHook.onRequest);
    scope.addHook('preHandler', inFlightHook.preHandler);
    scope.addHook('preHandler', relay.hook);
    scope.addHook('onSend', holdSession);
    await scope.register(proxyRoutes, forwarder);
  });
  await app.register(async (scope) => {
    scope.addHook(
      'onRequest',
      proxyTokenHook(authenticator, limiter, undefined, () => publicUrl),
    );
    await scope.register(authRoutes, {
      minted,
      revocations,
      records: new MintRecords(namespaced(store, 'minted:'), now),
      serverNames: () => Object.keys(currentServers),
      now,
    });
  });
  await app.register(async (scope) => {
    // RFC 9728 §5.1: a 401 here says where an MCP client learns how to sign in.
    scope.addHook(
      'onRequest',
      relay.trusting(
        proxyTokenHook(
          authenticator,
          limiter,
          { query: config.allowQueryToken },
          (request) => (publicUrl === undefined ? undefined : resourceOf(publicUrl, request)),
          (request, error) => withBearerChallenge(resourceMetadata, request, error),
        ),
      ),
    );
    if (audit) registerAuditHooks(scope, audit, 'mcp');
    scope.addHook('onRequest', live.hook());
    scope.addHook('onRequest', inFlightHook.onRequest);
    scope.addHook('preHandler', inFlightHook.preHandler);
    scope.addHook('preHandler', relay.hook);
    scope.addHook('onSend', holdSession);
    await scope.register(mcpRoutes, mcp);
  });

  /**
   * Whether an owner may keep what it has open to a target, given the servers a reload changed
   * and the principals whose tool grants it changed (their sessions hold the old tool filter).
   */
  const mayKeepAfter =
    (changed: ReadonlySet<string>, retooled: (ownerId: string) => boolean = () => false): MayKeep =>
    (ownerId, targetKey) => {
      if (retooled(ownerId)) return false;
      // An OIDC principal's grants come with each token: a reload re-judges them on its next
      // request; what it holds now ends with its issuer, its issuer's grant mapping, or with a
      // server that changed.
      if (ownerId.startsWith('oidc:'))
        return (
          oidc.knowsOwner(ownerId) &&
          (targetKey === undefined || targets.stillReaches(targetKey, undefined, changed))
        );
      const grants = authenticator.grantsOf(ownerId);
      if (grants === undefined) return false;
      return targetKey === undefined || targets.stillReaches(targetKey, grants, changed);
    };
  const webSockets = registerWebSocket(app, {
    broker,
    authenticator,
    holdings,
    limiter,
    audit,
    trustedProxies: config.trustedProxies,
    targets,
    planner,
    policy: access,
    maxMessageBytes: config.websocket.maxMessageBytes,
    handshakeTimeoutMs: config.server.requestTimeoutMs,
    // A handshake checked just before a reload is judged again once it completes.
    mayKeep: mayKeepAfter(new Set()),
    resource: () => publicUrl,
    connection: {
      sessions,
      held,
      heartbeatMs: config.websocket.heartbeatMs,
      maxQueuedBytes: config.websocket.maxQueuedBytes,
      inFlight,
      maxInFlight: config.limits.inFlightPerSocket,
      maxBatchMessages: config.limits.maxBatchMessages,
    },
  });
  openSockets = webSockets.count;
  let drainer: NodeJS.Timeout | undefined;
  // Connections and how many requests each has in flight: one with none can be closed at shutdown.
  const connections = new ConnectionDrain(app.server);
  /** Streams that never end by themselves (GET event streams) end; calls in flight finish. */
  const endStreams = () => {
    shutdown.abort();
    for (const session of sessions.values()) session.endStandalone();
  };
  app.decorate('drain', {
    unready: () => {
      draining = true;
    },
    quiet: async (boundMs: number) => {
      draining = true;
      connections.stopAccepting();
      endStreams();
      // A connection idle this long has no client about to use it; busy ones end with their next
      // answer (Connection: close), so no request races the closing of its connection.
      await connections.quiet(boundMs, DRAIN_IDLE_MS);
    },
  });
  app.addHook('preClose', async () => {
    shuttingDown = true;
    // Other instances stop relaying here, and what they relayed (or this one did) ends now.
    await ownership.close();
    await relay.close();
    endStreams();
    // Keep-alive connections that fall idle once their request finished (or never sent one)
    // would hold close() open until their timeout: close them as soon as they are idle.
    drainer = setInterval(() => connections.closeIdle(), 100);
    drainer.unref();
  });
  // The configuration in force: a reload compares the next one's tool grants with it.
  let current = config;
  app.decorate('reload', (next: Config): string[] => {
    // Build everything that can fail first, so a bad file leaves the running config untouched.
    signingKeys.replace(signingKeySettings(next));
    verifier.replace(next.proxyTokens, next.tokens, next.adminToken);
    oidc.replace(oidcIssuers(next), oidcTiming(next));
    publicUrl = next.publicUrl;
    // A dropped key must stop verifying the tokens it signed, cached or not, and end the sockets
    // and streams they hold; remembered OIDC principals carry the old claim mapping's grants:
    // all are judged again, under the new keys and issuers (so only once those are in place:
    // a recheck against the old ones would remember the old grants again).
    authenticator.forgetVerified();
    void holdings.recheckAll().catch(() => {});
    guard.replace(next.egress);
    targets.forgetVetted();
    const changed = targets.replaceServers(next.servers);
    const retooled = retooledPrincipals(current, next);
    current = next;
    currentServers = next.servers;
    // What a reload takes away ends with it (issue 14 #3 and its review): a revoked token's
    // sockets, streams and sessions, and whatever reaches a server its token may no longer name
    // or that was removed or re-pointed. One decision; new requests meet the same in resolve().
    const mayKeep = mayKeepAfter(changed, retooled);
    // Sockets first, so they close with 4401 rather than by their session ending.
    webSockets.endUnreachable(mayKeep);
    live.endUnreachable(mayKeep);
    void sessions.endRevoked((ownerId, session) => mayKeep(ownerId, session.target));
    limiter.replaceLimits(rateLimits(next), rateClasses(next));
    access.corsOrigins = next.corsOrigins;
    access.corsAllowedHeaders = next.corsAllowedHeaders;
    access.trustedHosts = next.trustedHosts;
    access.allowMissingOrigin = next.websocket.allowMissingOrigin;
    app.log.level = next.logLevel;
    app.log.info(guard.describe());
    return RESTART_SETTINGS.filter((key) => JSON.stringify(config[key]) !== JSON.stringify(next[key]));
  });
  app.addHook('onClose', async () => {
    clearInterval(drainer);
    holdings.close();
    await revocations.close();
    await sessions.closeAll();
    await guard.close();
    await rateStore.close();
    await store.close();
    await auditSink?.close();
  });
  app.addHook('onReady', async () => {
    app.log.info(guard.describe());
  });
  return app;
}
