/**
 * @module app
 * `buildApp(config, deps)` assembles the proxy: logger, auth, CORS, egress guard, upstream
 * HTTP, sessions and routes. Nothing lives at module level, so tests build as many apps side
 * by side as they like. The identity parts are built in identity/wiring.ts, the OAuth broker in
 * credentials/wiring.ts.
 */
import fastifyCors from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AppDeps } from './app-deps.ts';
import { SYSTEM_CLOCK } from './clock.ts';
import { brokerStartLine, userCodesWarning } from './config/broker-switch.ts';
import type { Config } from './config/config.ts';
import { rateClasses, rateLimits } from './config/rate-rules.ts';
import { restartOnlyChanges } from './config/restart-settings.ts';
import { memberCredentials } from './credentials/member-credentials.ts';
import { BrokerHolder, vaultKeysFor } from './credentials/wiring.ts';
import { buildDispatch } from './dispatch/wiring.ts';
import { ProxyError } from './errors.ts';
import { corsOptions } from './http/cors.ts';
import { GracefulStop } from './http/graceful-stop.ts';
import { registerJsonBodyParser } from './http/json-body.ts';
import { registerErrorHandlers, registerRequestLogging } from './http/observe.ts';
import { buildRelay } from './http/relay-wiring.ts';
import { serverOptions } from './http/server-options.ts';
import { registerTraceHooks } from './http/trace-hooks.ts';
import { registerWriteIdleDeadline } from './http/write-idle.ts';
import { LiveRequests } from './identity/live-requests.ts';
import { MintRecords } from './identity/mint-records.ts';
import { holdingReach, mayKeepAfter, reloadVerdicts, retooledPrincipals } from './identity/reload-reach.ts';
import { holdSessionHook } from './identity/session-holding.ts';
import { buildIdentity } from './identity/wiring.ts';
import { InFlightLimits } from './limits/in-flight.ts';
import { inFlightHooks } from './limits/in-flight-hooks.ts';
import { RateLimiter } from './limits/rate-limiter.ts';
import type { RateStore } from './limits/rate-store.ts';
import { COUNTER_FAILURE_WARNING } from './limits/store-failures.ts';
import { createLogger } from './observability/logger.ts';
import { ProxyMetrics } from './observability/metrics.ts';
import { throttledWarning } from './observability/throttled-warning.ts';
import { Tracing } from './observability/tracing.ts';
import type { HeldSession } from './sessions/held-session.ts';
import { configuredSecrets } from './sessions/sealer-key.ts';
import { SessionStore } from './sessions/store.ts';
import { ANSWER_LOGS_NAMESPACE, openStore } from './store/open-store.ts';
import { purposeSeal } from './store/purpose-seal.ts';
import { namespaced, type Store } from './store/store.ts';
import { registerCallerScopes } from './surfaces/caller-scopes.ts';
import { clientBundleRoutes, DEFAULT_CLIENT_BUNDLE_PATH } from './surfaces/client-bundle.ts';
import { healthRoutes } from './surfaces/health.ts';
import { infoRoutes } from './surfaces/info.ts';
import { McpEndpoint } from './surfaces/mcp/endpoint.ts';
import { HeldSessionHandler } from './surfaces/mcp/held-session-handler.ts';
import { PassThrough } from './surfaces/mcp/passthrough.ts';
import { PooledSessionHandler } from './surfaces/mcp/pooled-session-handler.ts';
import { SignInRounds } from './surfaces/mcp/sign-in-input.ts';
import { metricsRoutes } from './surfaces/metrics.ts';
import { oauthRoutes } from './surfaces/oauth/routes.ts';
import { Forwarder } from './surfaces/proxy/forwarder.ts';
import { resourceMetadataRoutes, resourceUrls } from './surfaces/resource-metadata.ts';
import { openingsOf, serverHosts, sessionCounts, statusEnabled, statusRoutes } from './surfaces/status.ts';
import { registerWebSocket } from './surfaces/ws/routes.ts';
import { ANSWER_LOGS_PURPOSE, AnswerEvents } from './virtual/answer-events.ts';
import { ClientSessions } from './virtual/client-sessions.ts';
import { FLEET_PURPOSE, fleetOn } from './virtual/fleet-streams.ts';
import { MemberSessions } from './virtual/member-sessions.ts';
import { VirtualServers } from './virtual/virtual-servers.ts';
import { VirtualSessions } from './virtual/virtual-session.ts';

export type { AppDeps };

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Applies a new configuration without dropping sessions (SIGHUP). Returns the changed
     * settings that only take effect after a restart. Throws, changing nothing, if invalid.
     */
    reload(config: Config): string[];
    /**
     * Loads what `config` uses and the running configuration did not (the OAuth broker): main.ts
     * awaits it before {@link reload}, so no request finds a feature on but not yet loaded.
     */
    prepareReload(config: Config): Promise<void>;
  }
}

/** Bytes an outbound event stream may queue for a slow reader before it is closed. */
const STREAM_QUEUE_BYTES = 4 * 1_048_576;
/** Interval of keep-alive comments on outbound event streams. */
const STREAM_HEARTBEAT_MS = 25_000;

/** Builds the proxy's Fastify instance (not yet listening). */
export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const logger = createLogger(config.logLevel, deps.logDestination);
  const clock = deps.clock ?? SYSTEM_CLOCK;
  const now = () => clock.now();
  const app = Fastify(serverOptions(config, logger));

  app.server.maxConnections = config.server.maxConnections;

  let openSockets = () => 0;
  // The status page (issue 21): only when a token could read it, and only then loaded (issue
  // #16: start-up memory); `instanceId` is known below.
  const status = statusEnabled(config)
    ? new (await import('./observability/live-status.ts')).LiveStatus({
        now,
        instanceId: () => instanceId,
        servers: () => serverHosts(currentServers),
        sessions: () => sessionCounts(sessions.values(), openSockets()),
      })
    : undefined;
  const metrics = await ProxyMetrics.create(
    { sessions: () => sessions.size, sockets: () => openSockets() },
    { enabled: config.metricsToken !== undefined },
  );
  // Off (no SDK loaded, no hooks) unless an OTLP endpoint is configured (issue 21).
  const tracing = await Tracing.create(config.tracing);
  // One store for shared state (issue 17): rate counters, revocations, and what issues 18 and 19
  // add; a test may pass its own, or a rate store of its own (a slow one).
  let store: Store;
  if (deps.store) store = deps.store;
  else {
    const opened = await openStore(config, {
      clock,
      onError: throttledWarning(logger, 'shared store (Redis) unreachable'),
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
    { now, onStoreFailure: throttledWarning(logger, COUNTER_FAILURE_WARNING) },
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
  const identity = buildIdentity(config, {
    store,
    clock,
    logger,
    serverNames: () => Object.keys(currentServers),
    resourceUrls,
    bearerVerifiers: deps.bearerVerifiers,
    oidcFetch: deps.oidcFetch,
    auditDestination: deps.auditDestination,
  });
  const { authenticator, holdings, audit, resourceMetadata } = identity;
  const sessions = new SessionStore<HeldSession>({
    ...config.sessions,
    clock,
    admit: (ownerId, rateClass) => limiter.consume('sessionsPerToken', ownerId, rateClass),
    ownerValid: identity.ownerKnown,
  });
  // `targets` is built further down; a recheck runs only after a request has named its target.
  const live = new LiveRequests(identity.ownerKnown, holdings, (grants, targetKey) =>
    reachable.stillReaches(targetKey, grants, new Set()),
  );
  await identity.listen();
  // Any instance serves any request (issue 19): session owners, the relay, the shared sealer.
  const cluster = await buildRelay(config, {
    app,
    store,
    storeGiven: deps.store !== undefined,
    sessions,
    logger,
    tracing,
    ...(deps.relayLimits ? { relayLimits: deps.relayLimits } : {}),
  });
  const { instanceId, relay, sealer } = cluster;
  // What instances sharing a store seal what they send each other with: loaded only then.
  const boxes = cluster.shared ? await import('./http/relay-box.ts') : undefined;
  // Other instances' counts on the status page, with a store they share (issue 21).
  const roster =
    status && boxes
      ? (await import('./observability/instance-roster.ts')).InstanceRoster.forStatus(status, {
          store,
          clock,
          logger,
          box: boxes.relayBox(configuredSecrets(config), () => clock.now(), boxes.ROSTER_KEY_INFO),
        })
      : undefined;
  // A held session answered to a minted token ends with the token; its ownership is recorded
  // before its id reaches the caller (issue 19).
  const holdSession = holdSessionHook(holdings, sessions, relay.claim);
  let currentServers = config.servers;
  // The way out (egress guard, upstream HTTP, targets, connector, session openers, planner).
  const { guard, http, paramHeaders, targets, held, pool, planner, verdictChannels } = buildDispatch(config, {
    logger,
    now,
    sessions,
    metrics,
    status,
    tracing,
    instanceId,
    resolver: deps.resolver,
    children: deps.children,
    onOpen: status && openingsOf(status),
    verdictStore: namespaced(store, 'verdicts:'),
    onVerdictStoreError: throttledWarning(logger, 'shared store unreachable: upstream verdicts not shared'),
  });
  await verdictChannels.listen();
  const stream = { maxQueuedBytes: STREAM_QUEUE_BYTES, heartbeatMs: STREAM_HEARTBEAT_MS };
  // The vault's keys seal the broker's tokens and the sign-in rounds' request states alike.
  const vaultKeys = vaultKeysFor(config);
  const codesWarning = userCodesWarning(config);
  if (codesWarning !== undefined) logger.warn(codesWarning);
  // The upstream OAuth broker (issue 18), loaded only once a configuration runs it (issue #16).
  const brokers = new BrokerHolder(config, {
    store,
    guard,
    keys: vaultKeys,
    settings: () => current,
    publicUrl: identity.publicUrl,
    servers: () => currentServers,
    now,
    tracing,
  });
  await brokers.loadFor(config);
  const broker = () => brokers.current;
  // Virtual servers (issue 20): the proxy answers as one MCP server over several configured ones.
  const virtual = new VirtualServers({
    settings: () => current.virtualServers,
    resolve: (member, grants) => targets.resolve({ server: member }, grants),
    members: new MemberSessions({
      sessions,
      open: held.open.bind(held),
      timeoutMs: config.upstream.timeoutMs,
    }),
    logger,
    onMemberDown: (code) => metrics.refusal(`virtual_member:${code}`),
    credentials: memberCredentials(broker),
    cursorSecret: config.sessionSecret,
    // Its clients' streams and answers cross to the other instances sharing the store.
    fleet: boxes
      ? fleetOn(
          store,
          boxes.relayBox(configuredSecrets(config), now, FLEET_PURPOSE),
          logger,
          config.bodyLimitBytes,
        )
      : undefined,
    now,
  });
  await virtual.listening();
  // What a reload lets a running request or session keep: a virtual server's name is no
  // configured server's, and its members are reached through it.
  const reachable = holdingReach(virtual, targets);
  // Sessions of virtual servers for 2026-07-28 clients of /servers/{name}/mcp and /ws sockets.
  const virtualSessions = new VirtualSessions({
    virtual,
    sessions,
    inputDeadlineMs: config.sessions.idleTimeoutMs,
    timeoutMs: config.upstream.timeoutMs,
    handleTag: instanceId,
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
    virtual,
  });
  // SIGTERM's phases (issue 19, rolling restarts): no longer ready, quiet, closed.
  const stop = new GracefulStop(app.server, {
    endSessionStreams: () => {
      for (const session of sessions.values()) session.endStandalone();
    },
    beforeClose: cluster.close,
    quietRelayed: cluster.quiet,
  });
  const clientSessions = new ClientSessions({ sealer, store: namespaced(store, 'virtual-sessions:'), now });
  const mcp = new McpEndpoint({
    targets,
    planner,
    http,
    sealer,
    passThrough: new PassThrough(http, sealer),
    bridge: new HeldSessionHandler({ sessions, held, timeoutMs: config.upstream.timeoutMs, stream }),
    modern: new PooledSessionHandler({ pool, paramHeaders, timeoutMs: config.upstream.timeoutMs, stream }),
    inbound: access,
    timeoutMs: config.upstream.timeoutMs,
    shutdown: stop.signal,
    broker,
    signIn: new SignInRounds(vaultKeys, now),
    virtual,
    virtualModern: new PooledSessionHandler({
      pool: virtualSessions.pool,
      paramHeaders,
      timeoutMs: config.upstream.timeoutMs,
      stream,
    }),
    virtualSessions: clientSessions,
    virtualAnswers: {
      events: new AnswerEvents({
        store: namespaced(store, ANSWER_LOGS_NAMESPACE),
        upstreamTimeoutMs: config.upstream.timeoutMs,
        now,
        ended: (key) => clientSessions.isEnded(key),
        name: purposeSeal(configuredSecrets(config), ANSWER_LOGS_PURPOSE)?.name,
      }),
      pollMs: () => current.server.answerPollMs,
    },
    stream,
    follow: identity.follow,
  });

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
  app.decorateRequest('inFlightHeld', undefined);

  await app.register(fastifyCors, () => corsOptions(access, config.corsMaxAgeSeconds));

  // Callback-style hooks: an async one costs a promise and a microtask on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // Issue #14.10: whatever a body holds (relayed upstream content too), never sniff it as HTML.
    reply.header('x-content-type-options', 'nosniff');
    const refused = stop.closing && request.url !== '/health' && request.url !== '/ready';
    done(refused ? new ProxyError('shutting_down') : undefined);
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    // Requests that finish during shutdown must not leave a keep-alive socket holding close() open.
    if (stop.closesConnections) reply.header('connection', 'close');
    done(null, payload);
  });
  if (tracing.enabled)
    registerTraceHooks(app, tracing, {
      named: (name) => Object.hasOwn(currentServers, name) || Object.hasOwn(current.virtualServers, name),
      tools: (name) => (currentServers[name] ?? current.virtualServers[name])?.tools,
      virtual: (name) => Object.hasOwn(current.virtualServers, name),
    });
  registerRequestLogging(app, metrics, status);
  registerWriteIdleDeadline(app, config.server.writeIdleTimeoutMs);
  registerErrorHandlers(app);

  await app.register(infoRoutes);
  await app.register(clientBundleRoutes, { path: deps.clientBundlePath ?? DEFAULT_CLIENT_BUNDLE_PATH });
  if (config.metricsToken)
    await app.register(metricsRoutes, { metrics, token: config.metricsToken, limiter });
  if (status)
    await app.register(statusRoutes, { status, metricsToken: config.metricsToken, authenticator, limiter });
  await app.register(healthRoutes, { shuttingDown: () => stop.stopping, starting: cluster.starting });
  await app.register(resourceMetadataRoutes, resourceMetadata);
  await app.register(oauthRoutes, {
    broker: () => brokers.load(),
    authenticator,
    limiter,
    corsOrigins: () => access.corsOrigins,
    publicUrl: identity.publicUrl,
  });
  await registerCallerScopes(app, {
    authenticator,
    limiter,
    allowQueryToken: config.allowQueryToken,
    publicUrl: identity.publicUrl,
    resourceMetadata,
    audit,
    live,
    inFlight: inFlightHook,
    relay,
    holdSession,
    forwarder,
    mcp,
    auth: {
      minted: identity.minted,
      revocations: identity.revocations,
      records: new MintRecords(namespaced(store, 'minted:'), now),
      configured: () => current,
      now,
    },
    connections: async () => (await brokers.load()).connections,
  });

  const reach = { oidc: identity.oidc, authenticator, targets: reachable };
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
    mayKeep: mayKeepAfter(reach, new Set()),
    resource: identity.publicUrl,
    connection: {
      sessions,
      held,
      heartbeatMs: config.websocket.heartbeatMs,
      maxQueuedBytes: config.websocket.maxQueuedBytes,
      inFlight,
      maxInFlight: config.limits.inFlightPerSocket,
      maxBatchMessages: config.limits.maxBatchMessages,
      tracing,
      virtual: virtualSessions,
    },
  });
  openSockets = webSockets.count;
  stop.register(app);
  // The configuration in force: a reload compares the next one's tool grants with it.
  let current = config;
  // The broker's own decision (https, or http on loopback) tells the operator what it does.
  const brokerSays = brokerStartLine(config, brokers.current?.enabled ?? false);
  if (brokerSays) logger[brokerSays.level]({ publicUrl: brokerSays.origin }, brokerSays.message);
  app.decorate('prepareReload', (next: Config) => brokers.loadFor(next));
  app.decorate('reload', (next: Config): string[] => {
    // Build everything that can fail first, so a bad file leaves the running config untouched.
    identity.reload(next);
    vaultKeys.replace(next.vaultKeys);
    guard.replace(next.egress);
    targets.forgetVetted();
    const changed = targets.replaceServers(next.servers);
    const retooled = retooledPrincipals(current, next);
    current = next;
    currentServers = next.servers;
    // A caller that did not prepare the reload: the broker comes a moment later.
    brokers
      .loadFor(next)
      .catch((error: unknown) => app.log.error({ err: error }, 'the OAuth broker did not load'));
    // What a reload takes away ends with it (issue 14 #3 and its review): a revoked token's
    // sockets, streams and sessions, and whatever reaches a server its token may no longer name
    // or that was removed or re-pointed. One decision; new requests meet the same in resolve().
    // A virtual server's sockets and sessions (and its member sessions) take the grants of now
    // per request: a tool grant that changed leaves them open (its requests in flight end).
    const verdicts = reloadVerdicts(reach, changed, retooled, virtual);
    // Sockets first, so they close with 4401 rather than by their session ending.
    webSockets.endUnreachable(verdicts.sockets);
    live.endUnreachable(verdicts.requests);
    virtual.refreshStreams();
    void sessions.endRevoked(verdicts.sessions);
    limiter.replaceLimits(rateLimits(next), rateClasses(next));
    access.corsOrigins = next.corsOrigins;
    access.corsAllowedHeaders = next.corsAllowedHeaders;
    access.trustedHosts = next.trustedHosts;
    access.allowMissingOrigin = next.websocket.allowMissingOrigin;
    app.log.level = next.logLevel;
    app.log.info(guard.describe());
    return restartOnlyChanges(config, next);
  });
  app.addHook('onClose', async () => {
    stop.dispose();
    await roster?.close();
    await virtual.close();
    await identity.close();
    await sessions.closeAll();
    await verdictChannels.close();
    await guard.close();
    await rateStore.close();
    await store.close();
    await identity.closeAudit();
    await tracing.close();
  });
  app.addHook('onReady', async () => {
    app.log.info(guard.describe());
  });
  return app;
}
