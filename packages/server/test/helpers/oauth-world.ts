/**
 * The test world of the upstream OAuth broker (issue 18): a real authorization server and an
 * OAuth-protected upstream MCP server, both on 127.0.0.1 ephemeral ports, plus scripted users.
 *
 * ## Starting it
 * ```ts
 * const world = await startOAuthWorld({ accessTokenTtl: 60 });   // after(() => world.stop())
 * world.issuer             // http://127.0.0.1:<p>  (the authorization server, oidc-provider)
 * world.upstream.url       // http://127.0.0.1:<q>/mcp  (Streamable HTTP, SDK v1, stateless)
 * world.upstream.resource  // the same URL: the RFC 8707 resource and the tokens' `aud`
 * world.upstream.metadataUrl  // http://127.0.0.1:<q>/.well-known/oauth-protected-resource/mcp
 * const other = await world.startUpstream({ scopesSupported: ['files:read'] }); // same AS
 * ```
 *
 * ## The authorization server (`world.as`)
 * `oidc-provider` with: RFC 8414 metadata at `/.well-known/oauth-authorization-server` (unless
 * `oauthMetadata: false`) and OpenID discovery at `/.well-known/openid-configuration`; open dynamic
 * client registration at `/reg` (RFC 7591, no initial access token); PKCE S256 required for every
 * client (`plain` is not offered); resource indicators (RFC 8707): an access token is a JWT
 * (`typ: at+jwt`, ES256) whose `aud` is the resource the client named, and only resources of this
 * world's upstreams are accepted (others: `invalid_target`); refresh tokens for every client that
 * may use the `refresh_token` grant (no `offline_access` needed), rotated on each use; revocation
 * (RFC 7009) at `/token/revocation` and introspection at `/token/introspection`; the `iss`
 * authorization response parameter (RFC 9207). Pre-registered clients: `clients` option.
 * Lifetimes: `accessTokenTtl` (s, default 300), `refreshTokenTtl` (default 3600),
 * `authorizationCodeTtl` (default 60). `world.as.events` lists what happened (`login:alice`,
 * `consent:alice`, `deny:alice`, `register:<client_id>`, `token:authorization_code`,
 * `token:refresh_token`, `token-error:invalid_grant`, `revoke`); `world.as.forgetGrants()` drops every
 * grant and token it issued (a refresh then fails with `invalid_grant`; the next authorization asks
 * for consent again); `world.as.clients()` lists the clients it knows; `world.as.stored('RefreshToken')`
 * the refresh tokens it holds now (their values), `stored('Grant')` its grants. `revocationEndpoint`
 * changes what its metadata says about revocation (`null`: not offered).
 *
 * ## Time
 * One clock for the world: `clock` option (`{ now(): number }` in ms, e.g. the proxy's ManualClock),
 * default `Date.now`. The upstream checks `exp` against it, and the authorization server stamps
 * `iat`/`exp` of its access-token JWTs from it, so `clock.advance(ttl * 1000 + 1)` expires every token
 * issued so far while a token issued afterwards (a refresh) is valid again — no sleeping. (The
 * authorization server's own bookkeeping — codes, refresh-token lifetimes — runs on real time.)
 *
 * ## Scripted users
 * `const alice = world.user('alice')` keeps a cookie jar per origin, so a second authorization of
 * the same user finds the authorization server's session (no login form) and an existing grant (no
 * consent form). `await alice.authorize(url, options)` takes any URL that leads to the authorize
 * endpoint (the authorize URL itself, or the proxy's one-time `/oauth/start/<id>` URL that
 * redirects there; with `bind`, it answers the proxy's start page as its opener would, see
 * {@link AuthorizeOptions.bind}), follows redirects by hand, submits the login form (`login=<name>`) and the
 * consent form (approve, or deny with `{ consent: 'deny' }`), and stops at the first redirect that
 * leaves the authorization server: the client's `redirect_uri` with `code`, `state`, `iss` (or
 * `error`). With `{ follow: true }` it also requests that callback URL and, for the proxy's
 * callback page, does what its script does (POSTs the query with the nonce the tab kept at the
 * bind), returning the last response in `callback`.
 * The login and consent pages are this file's own small HTML forms (see `interactionPage`).
 *
 * ## The upstream MCP server (`world.upstream`)
 * An SDK v1 `McpServer` behind `StreamableHTTPServerTransport` (stateless, JSON responses). It
 * accepts only a bearer JWT of this world's authorization server (signature via its JWKS, `iss`,
 * `aud` = its resource URL, `typ: at+jwt`, `exp` against the world's clock); otherwise 401 with
 * `WWW-Authenticate: Bearer resource_metadata="…", scope="…"` (plus `error="invalid_token"` when a
 * token was presented). Protected resource metadata (RFC 9728) at the path-inserted well-known URL
 * and (unless `metadataAtRoot: false`) at `/.well-known/oauth-protected-resource`. Tools: `echo`
 * and `whoami` (need `mcp:read`), `admin` (needs `mcp:admin`, not in `scopes_supported`): a
 * `tools/call` of a tool whose scope the token lacks gets HTTP 403 with
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope="<needed>", resource_metadata="…"`.
 * `whoami` answers `{ sub, client_id, scope }` as JSON text. `upstream.seen` records every request
 * (method, path, JSON-RPC method, the raw `Authorization` header or undefined, status);
 * `upstream.authorizations()` gives the distinct Authorization headers it saw, so a test can assert
 * that no proxy credential ever arrived.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, exportJWK, generateKeyPair, type JWK, type JWTPayload, jwtVerify } from 'jose';
import Provider, { errors as oidcErrors } from 'oidc-provider';
import { z } from 'zod';
import { SseSessions } from './oauth-world-sse.ts';

/** A clock in milliseconds (a ManualClock fits). */
export interface WorldClock {
  now(): number;
}

/** Options of one upstream MCP server. */
export interface UpstreamOptions {
  /** `scopes_supported` of its protected resource metadata (default `['mcp:read']`). */
  readonly scopesSupported?: readonly string[];
  /** The scope each tool needs (default `{ echo: 'mcp:read', whoami: 'mcp:read', admin: 'mcp:admin' }`). */
  readonly toolScopes?: Readonly<Record<string, string>>;
  /** Serve the metadata at `/.well-known/oauth-protected-resource` too (default true). */
  readonly metadataAtRoot?: boolean;
  /** Serve the metadata at the path-inserted URL (default true). */
  readonly metadataAtPath?: boolean;
  /** Name the metadata URL in the 401 challenge (default true). */
  readonly challengeMetadata?: boolean;
  /** Name the needed scope in the 401 challenge (default true). */
  readonly challengeScope?: boolean;
  /** The path of the MCP endpoint (default `/mcp`). */
  readonly path?: string;
  /**
   * Its transport: `streamable-http` (default, stateless) or `sse` (HTTP+SSE, 2024-11-05: a GET
   * stream at the path, POSTs to `<path>/messages`, each checked for the bearer token as a POST).
   */
  readonly transport?: 'streamable-http' | 'sse';
  /** Registers more features on each of its MCP servers (a test's hostile answers, say). */
  readonly extend?: (mcp: McpServer) => void;
  /** Awaited before each 401 to a token presented and refused: a test orders refusals with it. */
  readonly beforeRefusal?: () => Promise<void>;
}

/** Options of {@link startOAuthWorld}. */
export interface OAuthWorldOptions extends UpstreamOptions {
  /** The world's clock (default the real time). */
  readonly clock?: WorldClock;
  /** Access-token lifetime in seconds (default 300). */
  readonly accessTokenTtl?: number;
  /** Refresh-token lifetime in seconds (default 3600, real time). */
  readonly refreshTokenTtl?: number;
  /** Authorization-code lifetime in seconds (default 60, real time). */
  readonly authorizationCodeTtl?: number;
  /** Serve RFC 8414 metadata at `/.well-known/oauth-authorization-server` (default true). */
  readonly oauthMetadata?: boolean;
  /**
   * Clients known before any registration (oidc-provider client metadata), or a function of the
   * issuer giving them (redirect URIs may name it: the proxy's are per issuer).
   */
  readonly clients?:
    | readonly Readonly<Record<string, unknown>>[]
    | ((issuer: string) => readonly Readonly<Record<string, unknown>>[]);
  /** Allow dynamic client registration (default true). */
  readonly registration?: boolean;
  /**
   * Scopes the authorization server knows besides those of the first upstream (registration
   * refuses a client `scope` it does not know): list here the scopes of upstreams started later.
   */
  readonly extraScopes?: readonly string[];
  /**
   * What its metadata says the RFC 7009 revocation endpoint is: `null` leaves it out (revocation
   * not offered), a string replaces the real one (e.g. an address the egress guard refuses).
   * Default: the real endpoint, `/token/revocation`.
   */
  readonly revocationEndpoint?: string | null;
}

/** One request the upstream saw. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  /** The JSON-RPC method of a POST body, when it had one. */
  readonly rpcMethod: string | undefined;
  /** The raw `Authorization` header, or undefined. */
  readonly authorization: string | undefined;
  readonly status: number;
}

/** A running upstream MCP server. */
export interface OAuthUpstream {
  /** Its MCP endpoint. */
  readonly url: string;
  /** Its RFC 8707 resource identifier (= `url`); the `aud` of its tokens. */
  readonly resource: string;
  /** Its protected resource metadata, path-inserted form. */
  readonly metadataUrl: string;
  /** Every request it answered, oldest first. */
  readonly seen: readonly SeenRequest[];
  /** The distinct `Authorization` headers it saw. */
  authorizations(): string[];
  /** How many HTTP+SSE streams are open (`transport: 'sse'`). */
  sseStreams(): number;
  stop(): Promise<void>;
}

/** The authorization server. */
export interface OAuthAuthorizationServer {
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly registrationEndpoint: string;
  readonly revocationEndpoint: string;
  readonly jwksUri: string;
  /** What happened, oldest first (see the module header). */
  readonly events: readonly string[];
  /** The clients it knows (registered or configured), as stored. */
  clients(): Record<string, unknown>[];
  /** Drops every grant, refresh token and access token it issued. */
  forgetGrants(): void;
  /** Drops every login session (the next authorization shows the login form again). */
  forgetSessions(): void;
  /**
   * The ids of the live records of a kind it keeps: for `RefreshToken` these are the opaque
   * refresh token values themselves (JWT access tokens are not stored), so a test can look for
   * them in a store file, or see that a revocation ended them.
   */
  stored(kind: 'RefreshToken' | 'Grant'): string[];
  /**
   * Holds the token endpoint's answers (issued, not yet sent) until the returned function is
   * called: a test can keep a refresh in flight while something else happens.
   */
  holdTokenResponses(): () => void;
}

/** Options of {@link ScriptedUser.authorize}. */
export interface AuthorizeOptions {
  /** Approve (default) or deny the consent. */
  readonly consent?: 'approve' | 'deny';
  /** Request the final redirect too and return its response. */
  readonly follow?: boolean;
  /** Extra headers for the requests to origins other than the authorization server's. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * What the proxy's start page gets from its opener (docs/oauth.md, the bind protocol): the
   * user then does what the page's script does, POSTs `{credential, origin}` to the start URL
   * from the proxy's origin and follows the `authorizeUrl` it answers (keeping the nonce it
   * answers in the tab's sessionStorage for the proxy's origin, which the callback page POSTs).
   * Without it a start page stops the authorization (no opener: nothing is bound).
   */
  readonly bind?: Bind;
}

/**
 * How the scripted user binds the proxy's start page: as its opener would (`credential`,
 * `origin`); opened without an app, by typing the one-time `code`; or by signing in to the proxy
 * (`login` drives the identity provider from the login URL to its redirect back to the proxy,
 * whose page the user then completes as its script does).
 */
export type Bind =
  | { readonly credential: string; readonly origin: string }
  | { readonly code: string }
  | { readonly login: (loginUrl: string) => Promise<URL> };

/** Where an authorization ended. */
export interface AuthorizeResult {
  /** The redirect back to the client (its `redirect_uri` with the response parameters). */
  readonly redirect: URL;
  readonly code: string | undefined;
  readonly state: string | undefined;
  readonly iss: string | undefined;
  readonly error: string | undefined;
  /** Which forms the user was shown on the way. */
  readonly sawLogin: boolean;
  readonly sawConsent: boolean;
  /**
   * The response of the redirect target, with `follow: true`: for the proxy's callback page, the
   * answer to the POST its script makes (JSON: `{ok, server, openerOrigin}` or an error).
   */
  readonly callback?: { readonly status: number; readonly headers: Headers; readonly body: string };
}

/** A user who logs in and consents by script. */
export interface ScriptedUser {
  readonly name: string;
  /** Drives `url` through login and consent to the client's redirect (see the module header). */
  authorize(url: string | URL, options?: AuthorizeOptions): Promise<AuthorizeResult>;
  /** The cookies it holds for an origin (`name=value` pairs). */
  cookies(origin: string): Record<string, string>;
}

/** The running world. */
export interface OAuthWorld {
  readonly issuer: string;
  readonly as: OAuthAuthorizationServer;
  readonly upstream: OAuthUpstream;
  readonly clock: WorldClock;
  /** Another upstream protected by the same authorization server. */
  startUpstream(options?: UpstreamOptions): Promise<OAuthUpstream>;
  /** A scripted user (the same object for the same name). */
  user(name: string): ScriptedUser;
  stop(): Promise<void>;
}

type StoredRecord = { payload: Record<string, unknown>; expires: number };

const MAX_BODY = 1 << 20;

/** Starts the authorization server and one upstream on 127.0.0.1. */
export async function startOAuthWorld(options: OAuthWorldOptions = {}): Promise<OAuthWorld> {
  const clock = options.clock ?? { now: () => Date.now() };
  const accessTokenTtl = options.accessTokenTtl ?? 300;
  const events: string[] = [];
  const records = new Map<string, StoredRecord>();
  // resource URL → the scopes its server offers; filled as upstreams start.
  const resources = new Map<string, string>();
  const upstreams: OAuthUpstream[] = [];
  const users = new Map<string, ScriptedUser>();

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signingJwk: JWK = { ...(await exportJWK(privateKey)), kid: 'world-1', alg: 'ES256', use: 'sig' };

  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {};
  let held: PromiseWithResolvers<void> | undefined;
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (options.oauthMetadata !== false && url.startsWith('/.well-known/oauth-authorization-server')) {
      // oidc-provider serves only OpenID discovery; RFC 8414 metadata of the same issuer is identical.
      req.url = '/.well-known/openid-configuration';
    }
    if (
      options.revocationEndpoint !== undefined &&
      req.url?.startsWith('/.well-known/openid-configuration')
    ) {
      rewriteMetadata(res, (metadata) => {
        if (options.revocationEndpoint === null) delete metadata.revocation_endpoint;
        else metadata.revocation_endpoint = options.revocationEndpoint;
      });
    }
    const interaction = /^\/interaction\/([^/?]+)(?:\/(login|consent))?/.exec(url);
    if (interaction !== null) {
      void interactionPage(req, res, interaction[2]).catch((error: unknown) => {
        if (!res.headersSent) res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    if (req.method === 'POST' && url.split('?')[0] === '/token' && held !== undefined) {
      const gate = held.promise;
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      res.end = ((...args: unknown[]) => {
        void gate.then(() => end(...args));
        return res;
      }) as typeof res.end;
    }
    if (req.method === 'POST' && url.startsWith('/token/revocation')) {
      res.on('finish', () => {
        if (res.statusCode === 200) events.push('revoke');
      });
    }
    handler(req, res);
  });
  await listen(server);
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const knownClients =
    typeof options.clients === 'function' ? options.clients(issuer) : (options.clients ?? []);
  const provider = new Provider(issuer, {
    jwks: { keys: [signingJwk] },
    adapter: memoryAdapter(records),
    clients: knownClients as never,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: options.authorizationCodeTtl ?? 60,
      RefreshToken: options.refreshTokenTtl ?? 3600,
      Grant: 86_400,
      Interaction: 600,
      Session: 86_400,
      IdToken: 300,
    },
    scopes: [
      ...new Set([
        'openid',
        'offline_access',
        ...(options.scopesSupported ?? ['mcp:read']),
        ...Object.values(options.toolScopes ?? DEFAULT_TOOL_SCOPES),
        ...(options.extraScopes ?? []),
      ]),
    ],
    clientDefaults: {
      id_token_signed_response_alg: 'ES256',
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    },
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: options.registration !== false },
      // Only the client a token was issued to may revoke or introspect it (RFC 7009 section 2.1).
      revocation: { enabled: true, allowedPolicy: ownToken },
      introspection: { enabled: true, allowedPolicy: ownToken },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, indicator: string) => {
          const scope = resources.get(indicator);
          if (scope === undefined) throw new oidcErrors.InvalidTarget();
          return {
            scope,
            audience: indicator,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    formats: {
      customizers: {
        // Access-token times follow the world's clock, so tests expire tokens without sleeping.
        jwt: (_ctx: unknown, _token: unknown, jwt: { payload: Record<string, unknown> }) => {
          const shift = Math.floor((clock.now() - Date.now()) / 1000);
          for (const claim of ['iat', 'exp', 'nbf']) {
            const value = jwt.payload[claim];
            if (typeof value === 'number') jwt.payload[claim] = value + shift;
          }
        },
      },
    },
    pkce: { required: () => true },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    expiresWithSession: () => false,
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
  } as never);
  // Its configuration warnings and server errors are not the tests' business; events are.
  provider.on('server_error', () => {});
  provider.on('grant.success', (ctx) => {
    events.push(`token:${String(ctx.oidc.params?.grant_type)}`);
  });
  provider.on('grant.error', (_ctx, error) => {
    events.push(`token-error:${error.error}`);
  });
  provider.on('registration_create.success', (_ctx, client) => {
    events.push(`register:${client.clientId}`);
  });
  handler = provider.callback();

  /** The login and consent pages: small forms a script fills by name. */
  async function interactionPage(
    req: IncomingMessage,
    res: ServerResponse,
    step: string | undefined,
  ): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      const uid = details.uid;
      const form =
        details.prompt.name === 'login'
          ? `<form method="post" action="/interaction/${uid}/login"><input name="login"><button>Sign in</button></form>`
          : `<form method="post" action="/interaction/${uid}/consent">` +
            `<p>${escapeHtml(String(details.params.client_id))} asks for ${escapeHtml(String(details.params.scope ?? ''))}</p>` +
            '<button name="decision" value="approve">Allow</button>' +
            '<button name="decision" value="deny">Deny</button></form>';
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><title>${details.prompt.name}</title>${form}`);
      return;
    }
    const fields = new URLSearchParams(await readBody(req));
    if (step === 'login') {
      const accountId = fields.get('login') ?? '';
      if (accountId === '') throw new Error('no login name');
      events.push(`login:${accountId}`);
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const accountId = details.session?.accountId ?? '';
    if (fields.get('decision') !== 'approve') {
      events.push(`deny:${accountId}`);
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user declined' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    events.push(`consent:${accountId}`);
    const grant =
      (details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)) ??
      new provider.Grant({ accountId, clientId: details.params.client_id as string });
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));

  async function startUpstream(upstreamOptions: UpstreamOptions = {}): Promise<OAuthUpstream> {
    const upstream = await startUpstreamServer({ ...upstreamOptions, issuer, jwks, clock });
    const scopes = new Set([
      ...(upstreamOptions.scopesSupported ?? ['mcp:read']),
      ...Object.values(upstreamOptions.toolScopes ?? DEFAULT_TOOL_SCOPES),
    ]);
    resources.set(upstream.resource, [...scopes].join(' '));
    upstreams.push(upstream);
    return upstream;
  }

  let upstream: OAuthUpstream;
  try {
    upstream = await startUpstream(options);
  } catch (error) {
    await close(server);
    throw error;
  }

  const as: OAuthAuthorizationServer = {
    issuer,
    authorizationEndpoint: `${issuer}/auth`,
    tokenEndpoint: `${issuer}/token`,
    registrationEndpoint: `${issuer}/reg`,
    revocationEndpoint: `${issuer}/token/revocation`,
    jwksUri: `${issuer}/jwks`,
    events,
    clients() {
      return [...records]
        .filter(([key]) => key.startsWith('Client:'))
        .map(([, record]) => record.payload)
        .concat(knownClients.map((client) => ({ ...client })));
    },
    forgetGrants() {
      for (const key of [...records.keys()]) {
        if (/^(Grant|RefreshToken|AccessToken|AuthorizationCode):/.test(key)) records.delete(key);
      }
    },
    forgetSessions() {
      for (const key of [...records.keys()]) if (key.startsWith('Session:')) records.delete(key);
    },
    holdTokenResponses() {
      const gate = Promise.withResolvers<void>();
      held = gate;
      return () => {
        if (held === gate) held = undefined;
        gate.resolve();
      };
    },
    stored(kind) {
      return [...records]
        .filter(([key, record]) => key.startsWith(`${kind}:`) && record.expires > Date.now())
        .map(([key]) => key.slice(kind.length + 1));
    },
  };

  return {
    issuer,
    as,
    upstream,
    clock,
    startUpstream,
    user(name) {
      let user = users.get(name);
      if (user === undefined) {
        user = scriptedUser(name, issuer);
        users.set(name, user);
      }
      return user;
    },
    async stop() {
      await Promise.all(upstreams.map((each) => each.stop()));
      await close(server);
    },
  };
}

/** Rewrites the JSON document oidc-provider answers on `res` (it sets headers, then ends with the body). */
function rewriteMetadata(res: ServerResponse, change: (metadata: Record<string, unknown>) => void): void {
  const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
  res.end = ((chunk?: unknown) => {
    if (res.statusCode !== 200 || chunk === undefined || typeof chunk === 'function') return end(chunk);
    const metadata = JSON.parse(Buffer.from(chunk as Buffer | string).toString('utf8')) as Record<
      string,
      unknown
    >;
    change(metadata);
    const body = JSON.stringify(metadata);
    res.setHeader('content-length', Buffer.byteLength(body));
    return end(body);
  }) as typeof res.end;
}

function ownToken(_ctx: unknown, client: { clientId: string }, token: { clientId?: string }): boolean {
  return token.clientId === client.clientId;
}

const DEFAULT_TOOL_SCOPES: Readonly<Record<string, string>> = {
  echo: 'mcp:read',
  whoami: 'mcp:read',
  admin: 'mcp:admin',
};

interface UpstreamDeps extends UpstreamOptions {
  readonly issuer: string;
  readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  readonly clock: WorldClock;
}

async function startUpstreamServer(deps: UpstreamDeps): Promise<OAuthUpstream> {
  const path = deps.path ?? '/mcp';
  const toolScopes = deps.toolScopes ?? DEFAULT_TOOL_SCOPES;
  const scopesSupported = deps.scopesSupported ?? ['mcp:read'];
  const seen: SeenRequest[] = [];
  let origin = '';

  const server = createServer((req, res) => {
    void serve(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.statusCode = 500;
      res.end(String(error));
    });
  });
  await listen(server);
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const resource = `${origin}${path}`;
  const sse = new SseSessions(`${path}/messages`, () => buildMcpServer());
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource${path}`;
  const metadata = {
    resource,
    authorization_servers: [deps.issuer],
    scopes_supported: scopesSupported,
    bearer_methods_supported: ['header'],
    resource_name: 'oauth-world upstream',
  };

  function challenge(params: Record<string, string>): string {
    const all: Record<string, string> = { ...params };
    if (deps.challengeMetadata !== false) all.resource_metadata = metadataUrl;
    return `Bearer ${Object.entries(all)
      .map(([key, value]) => `${key}="${value}"`)
      .join(', ')}`;
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const authorization = req.headers.authorization;
    let rpcMethod: string | undefined;
    const record = (status: number) => {
      seen.push({ method: req.method ?? '', path: url.pathname, rpcMethod, authorization, status });
    };
    res.on('finish', () => record(res.statusCode));

    const atPath = url.pathname === `/.well-known/oauth-protected-resource${path}`;
    const atRoot = url.pathname === '/.well-known/oauth-protected-resource';
    if ((atPath && deps.metadataAtPath !== false) || (atRoot && deps.metadataAtRoot !== false)) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(metadata));
      return;
    }
    const sseMessages = deps.transport === 'sse' && url.pathname === `${path}/messages`;
    if (url.pathname !== path && !sseMessages) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || 'null') : undefined;
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
      const method = (body as { method?: unknown }).method;
      if (typeof method === 'string') rpcMethod = method;
    }

    // No GET stream and no DELETE (stateless): refused before the token is looked at, so a client's
    // stream attempt never meets a 401 and refreshes beside its POST (a refresh race: with
    // rotating refresh tokens, the second use of one revokes the grant).
    if (req.method !== 'POST' && (deps.transport !== 'sse' || req.method !== 'GET' || sseMessages)) {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const bearer = /^Bearer ([^\s]+)$/i.exec(authorization ?? '')?.[1];
    const baseScope = deps.challengeScope === false ? {} : { scope: scopesSupported.join(' ') };
    if (bearer === undefined) {
      res.writeHead(401, { 'www-authenticate': challenge(baseScope) }).end();
      return;
    }
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(bearer, deps.jwks, {
        issuer: deps.issuer,
        audience: resource,
        typ: 'at+jwt',
        currentDate: new Date(deps.clock.now()),
      }));
    } catch {
      await deps.beforeRefusal?.();
      res.writeHead(401, { 'www-authenticate': challenge({ error: 'invalid_token', ...baseScope }) }).end();
      return;
    }
    const granted = new Set(String(claims.scope ?? '').split(' '));
    if (rpcMethod === 'tools/call') {
      const tool = (body as { params?: { name?: unknown } }).params?.name;
      const needed = typeof tool === 'string' ? toolScopes[tool] : undefined;
      if (needed !== undefined && !granted.has(needed)) {
        // Step-up (MCP authorization, "Scope Challenge Handling"): name every scope the call needs.
        const scope = [...new Set([...granted, needed])].filter(Boolean).join(' ');
        res.writeHead(403, { 'www-authenticate': challenge({ error: 'insufficient_scope', scope }) }).end();
        return;
      }
    }
    const auth = {
      token: bearer,
      clientId: String(claims.client_id ?? ''),
      scopes: [...granted].filter(Boolean),
      extra: { sub: claims.sub },
    };
    if (deps.transport === 'sse') {
      await sse.serve(req, res, url, body, auth);
      return;
    }
    const mcp = buildMcpServer();
    // Stateless (no session id): each POST gets its own server and transport.
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    (req as IncomingMessage & { auth?: unknown }).auth = auth;
    await transport.handleRequest(req, res, body);
  }

  function buildMcpServer(): McpServer {
    const mcp = new McpServer({ name: 'oauth-world-upstream', version: '1.0.0' });
    mcp.registerTool(
      'echo',
      { description: 'Echoes its input.', inputSchema: { message: z.string() } },
      ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }),
    );
    mcp.registerTool('whoami', { description: 'Who the bearer token names.' }, (extra) => ({
      content: [
        {
          type: 'text',
          text: JSON.stringify({
            sub: extra.authInfo?.extra?.sub,
            client_id: extra.authInfo?.clientId,
            scope: extra.authInfo?.scopes.join(' '),
          }),
        },
      ],
    }));
    mcp.registerTool('admin', { description: 'Needs the mcp:admin scope.' }, () => ({
      content: [{ type: 'text', text: 'admin ok' }],
    }));
    deps.extend?.(mcp);
    return mcp;
  }

  return {
    url: resource,
    resource,
    metadataUrl,
    seen,
    authorizations() {
      return [...new Set(seen.map((each) => each.authorization).filter((each) => each !== undefined))];
    },
    sseStreams: () => sse.size,
    async stop() {
      sse.close();
      await close(server);
    },
  };
}

/** A user with a cookie jar per origin, driving the authorization server's forms by HTTP. */
function scriptedUser(name: string, issuer: string): ScriptedUser {
  const jars = new Map<string, Map<string, { value: string; path: string }>>();
  /** The tab's sessionStorage per origin: the start page's nonces, by `state`. */
  const storage = new Map<string, Map<string, string>>();
  function session(origin: string) {
    let kept = storage.get(origin);
    if (kept === undefined) {
      kept = new Map();
      storage.set(origin, kept);
    }
    return kept;
  }
  const issuerOrigin = new URL(issuer).origin;

  function jar(origin: string) {
    let cookies = jars.get(origin);
    if (cookies === undefined) {
      cookies = new Map();
      jars.set(origin, cookies);
    }
    return cookies;
  }

  async function request(url: URL, init: RequestInit, extra: Readonly<Record<string, string>>) {
    const cookies = jar(url.origin);
    const header = [...cookies]
      .filter(([, cookie]) => url.pathname.startsWith(cookie.path))
      .map(([key, cookie]) => `${key}=${cookie.value}`)
      .join('; ');
    const headers = new Headers(init.headers);
    if (url.origin !== issuerOrigin)
      for (const [key, value] of Object.entries(extra)) headers.set(key, value);
    if (header !== '') headers.set('cookie', header);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const at = pair.indexOf('=');
      const key = pair.slice(0, at);
      const path = attributes.find((part) => /^path=/i.test(part))?.slice(5) || '/';
      if (/expires=Thu, 01 Jan 1970|max-age=0/i.test(line)) cookies.delete(key);
      else cookies.set(key, { value: pair.slice(at + 1), path });
    }
    return response;
  }

  return {
    name,
    cookies(origin) {
      return Object.fromEntries([...jar(new URL(origin).origin)].map(([key, cookie]) => [key, cookie.value]));
    },
    async authorize(start, options = {}) {
      const extra = options.headers ?? {};
      let sawLogin = false;
      let sawConsent = false;
      let visitedIssuer = false;
      let next = new URL(start);
      let init: RequestInit = {};
      for (let hop = 0; hop < 20; hop++) {
        if (next.origin === issuerOrigin) visitedIssuer = true;
        const response = await request(next, init, extra);
        init = {};
        const location = response.headers.get('location');
        if (location !== null && response.status >= 300 && response.status < 400) {
          await response.body?.cancel();
          const target = new URL(location, next);
          if (visitedIssuer && target.origin !== issuerOrigin) {
            return finish(target, sawLogin, sawConsent, options, extra);
          }
          next = target;
          continue;
        }
        const page = await response.text();
        if (response.status === 200 && page.includes('data-mcpp-bind')) {
          if (options.bind === undefined)
            throw new Error(`the start page at ${next.href} needs an opener (bind)`);
          const sameOrigin = (url: URL, body: unknown) =>
            request(
              url,
              {
                method: 'POST',
                headers: {
                  'content-type': 'application/json',
                  origin: url.origin,
                  'sec-fetch-site': 'same-origin',
                },
                body: JSON.stringify(body),
              },
              {},
            );
          const bind = options.bind;
          let bound: Response;
          if ('login' in bind) {
            const started = await sameOrigin(next, { login: true });
            const leaving = (await started.json()) as { loginUrl: string; state: string; nonce: string };
            if (started.status !== 200)
              throw new Error(`the login start was refused: ${JSON.stringify(leaving)}`);
            // The login return page POSTs the query with the nonce this tab kept when leaving.
            const back = await bind.login(leaving.loginUrl);
            bound = await sameOrigin(new URL(back.pathname, back), {
              query: back.search,
              nonce: leaving.nonce,
            });
          } else {
            bound = await sameOrigin(next, 'code' in bind ? { code: bind.code } : bind);
          }
          const answer = await bound.text();
          if (bound.status !== 200)
            throw new Error(`the bind at ${next.href} was refused with HTTP ${bound.status}: ${answer}`);
          const boundAnswer = JSON.parse(answer) as { authorizeUrl: string; state: string; nonce: string };
          // What the start page keeps in its tab's sessionStorage for the callback page.
          session(next.origin).set(boundAnswer.state, boundAnswer.nonce);
          next = new URL(boundAnswer.authorizeUrl);
          continue;
        }
        const action = /<form method="post" action="([^"]+)"/.exec(page)?.[1];
        if (response.status !== 200 || action === undefined) {
          throw new Error(
            `the authorization stopped at ${next.href} with HTTP ${response.status}: ${page.slice(0, 300)}`,
          );
        }
        const fields = new URLSearchParams();
        if (action.endsWith('/login')) {
          sawLogin = true;
          fields.set('login', name);
        } else {
          sawConsent = true;
          fields.set('decision', options.consent ?? 'approve');
        }
        next = new URL(action, next);
        init = {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: fields.toString(),
        };
      }
      throw new Error('too many redirects during the authorization');
    },
  };

  async function finish(
    redirect: URL,
    sawLogin: boolean,
    sawConsent: boolean,
    options: AuthorizeOptions,
    extra: Readonly<Record<string, string>>,
  ): Promise<AuthorizeResult> {
    const param = (key: string) => redirect.searchParams.get(key) ?? undefined;
    const result = {
      redirect,
      code: param('code'),
      state: param('state'),
      iss: param('iss'),
      error: param('error'),
      sawLogin,
      sawConsent,
    };
    if (!options.follow) return result;
    let response = await request(redirect, {}, extra);
    const page = await response.text();
    if (response.status === 200 && page.includes('data-mcpp-callback')) {
      // The proxy's callback page: it POSTs the query with the nonce this tab kept (docs/oauth.md).
      const kept = session(redirect.origin);
      const nonce = kept.get(redirect.searchParams.get('state') ?? '') ?? '';
      kept.delete(redirect.searchParams.get('state') ?? '');
      response = await request(
        new URL(redirect.pathname, redirect),
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            origin: redirect.origin,
            'sec-fetch-site': 'same-origin',
          },
          body: JSON.stringify({ query: redirect.search, nonce }),
        },
        extra,
      );
    } else {
      return { ...result, callback: { status: response.status, headers: response.headers, body: page } };
    }
    return {
      ...result,
      callback: { status: response.status, headers: response.headers, body: await response.text() },
    };
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function listen(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A minimal oidc-provider storage adapter over one Map (its default warns on every start). */
function memoryAdapter(records: Map<string, StoredRecord>) {
  return class MemoryAdapter {
    readonly #name: string;
    constructor(name: string) {
      this.#name = name;
    }
    #key(id: string) {
      return `${this.#name}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      records.set(this.#key(id), { payload, expires: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    }
    async find(id: string) {
      const record = records.get(this.#key(id));
      if (record === undefined || record.expires <= Date.now()) return undefined;
      return record.payload;
    }
    async findByUid(uid: string) {
      for (const [key, record] of records) {
        if (key.startsWith(`${this.#name}:`) && record.payload.uid === uid) return record.payload;
      }
      return undefined;
    }
    async findByUserCode(userCode: string) {
      for (const [key, record] of records) {
        if (key.startsWith(`${this.#name}:`) && record.payload.userCode === userCode) return record.payload;
      }
      return undefined;
    }
    async consume(id: string) {
      const record = records.get(this.#key(id));
      if (record) record.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      records.delete(this.#key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [key, record] of records) if (record.payload.grantId === grantId) records.delete(key);
    }
  };
}
