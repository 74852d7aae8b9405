/**
 * @module app
 * `buildApp(config, deps)` assembles the proxy: logger, auth, CORS, egress guard, upstream
 * HTTP, sessions and routes. Nothing lives at module level, so tests build as many apps side
 * by side as they like. The identity parts are built in identity/wiring.ts, the OAuth broker in
 * credentials/wiring.ts.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { AppDeps } from './app-deps.ts';
import { buildLimits } from './app-limits.ts';
import { reloader } from './app-reload.ts';
import { SYSTEM_CLOCK } from './clock.ts';
import { brokerStartLine, userCodesWarning } from './config/broker-switch.ts';
import type { Config } from './config/config.ts';
import { memberCredentials } from './credentials/member-credentials.ts';
import { BrokerHolder, vaultKeysFor } from './credentials/wiring.ts';
import { buildDispatch } from './dispatch/wiring.ts';
import { GracefulStop } from './http/graceful-stop.ts';
import { registerPlumbing } from './http/plumbing.ts';
import { buildRelay } from './http/relay-wiring.ts';
import { serverOptions } from './http/server-options.ts';
import { LiveRequests } from './identity/live-requests.ts';
import { MintRecords } from './identity/mint-records.ts';
import { grantsAfterReload, holdingReach, mayKeepAfter } from './identity/reload-reach.ts';
import { holdSessionHook } from './identity/session-holding.ts';
import { buildIdentity } from './identity/wiring.ts';
import type { RateStore } from './limits/rate-store.ts';
import { createLogger } from './observability/logger.ts';
import { ProxyMetrics } from './observability/metrics.ts';
import { throttledWarning } from './observability/throttled-warning.ts';
import { Tracing } from './observability/tracing.ts';
import type { HeldSession } from './sessions/held-session.ts';
import { configuredSecrets } from './sessions/sealer-key.ts';
import { SessionStore } from './sessions/store.ts';
import { openStore } from './store/open-store.ts';
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
import { FLEET_PURPOSE, fleetOn } from './virtual/fleet-channels.ts';
import { buildVirtual } from './virtual/wiring.ts';

export type { AppDeps };

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
  const { limiter, inFlight, inFlightHook } = buildLimits(config, { rateStore, metrics, now, logger });
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
    grantsNow: grantsAfterReload(authenticator),
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
  const virtualParts = await buildVirtual(config, {
    store,
    logger,
    now,
    sessions,
    held,
    targets,
    sealer,
    instanceId,
    current: () => current,
    onMemberDown: (code) => metrics.refusal(`virtual_member:${code}`),
    credentials: memberCredentials(broker),
    // Its clients' streams and answers cross to the other instances sharing the store.
    fleet: boxes
      ? fleetOn(
          store,
          boxes.relayBox(configuredSecrets(config), now, FLEET_PURPOSE),
          logger,
          config.bodyLimitBytes,
        )
      : undefined,
  });
  const { virtual, sessions: virtualSessions } = virtualParts;
  // What a reload lets a running request or session keep: a virtual server's name is no
  // configured server's, and its members are reached through it.
  const reachable = holdingReach(virtual, targets);
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
    virtualSessions: virtualParts.clients,
    virtualAnswers: { events: virtualParts.answers, pollMs: () => current.server.answerPollMs },
    stream,
    follow: identity.follow,
  });

  await registerPlumbing(app, {
    beforeParse: inFlightHook.beforeParse,
    access,
    corsMaxAgeSeconds: config.corsMaxAgeSeconds,
    stop,
    tracing,
    spanServers: {
      named: (name) => Object.hasOwn(currentServers, name) || Object.hasOwn(current.virtualServers, name),
      tools: (name) => (currentServers[name] ?? current.virtualServers[name])?.tools,
      virtual: (name) => Object.hasOwn(current.virtualServers, name),
    },
    metrics,
    status,
    writeIdleTimeoutMs: config.server.writeIdleTimeoutMs,
  });

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
  app.decorate(
    'reload',
    reloader(config, {
      identity,
      vaultKeys,
      guard,
      targets,
      brokers,
      reach,
      virtual,
      sockets: webSockets,
      live,
      sessions,
      limiter,
      access,
      log: app.log,
      current: () => current,
      adopt: (next) => {
        current = next;
        currentServers = next.servers;
      },
    }),
  );
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
