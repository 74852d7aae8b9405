/**
 * @module surfaces/oauth/routes
 * The browser legs of the upstream OAuth broker (issue 18), outside the authenticated scope: a
 * popup carries no proxy token until its opener hands it over. `GET /oauth/start/{id}` answers
 * the start page; `POST /oauth/start/{id}` is its bind (the opener's credential must be the
 * principal that made the call: login CSRF, review F1), answering a nonce the page keeps in its
 * tab's sessionStorage; `GET /oauth/callback/{issuer-key}` answers a page that POSTs that nonce
 * same-origin to `POST /oauth/callback/{issuer-key}`, which completes the sign-in only when the
 * nonce is the one bound into the `state` (review R1); the Client ID Metadata Documents are served
 * at `/oauth/client-metadata/{issuer-key}.json`. A start page opened without its app binds with
 * `{code}` (the one-time code) or `{login: true}` (a sign-in to the proxy, back on
 * `/oauth/login/{issuer-key}`). The bind protocol: docs/oauth.md.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OAuthBroker } from '../../credentials/broker.ts';
import { CallbackRefused } from '../../credentials/callback-refused.ts';
import { CALLBACK_BASE, CLIENT_METADATA_BASE, LOGIN_BASE } from '../../credentials/oauth-paths.ts';
import { findProxyError, ProxyError, toErrorReply } from '../../errors.ts';
import { type Authenticator, CREDENTIAL_REFUSALS } from '../../identity/authenticator.ts';
import { rateSubject } from '../../limits/client-address.ts';
import type { RateLimiter } from '../../limits/rate-limiter.ts';
import { callbackPage, loginReturnPage, messagePage, pageHeaders, scriptNonce, startPage } from './pages.ts';

/** What the OAuth routes need besides the broker. */
export interface OAuthRouteOptions {
  /** The broker, loaded on the first request here (issue #16: start-up memory). */
  readonly broker: () => Promise<OAuthBroker>;
  /** The one authenticator: the opener's credential is judged as a request's would be. */
  readonly authenticator: Authenticator;
  /** Failed credentials count against the address, as in the request hooks (brute force). */
  readonly limiter: RateLimiter;
  /** CORS_ORIGINS as configured now (a reload replaces it). */
  readonly corsOrigins: () => readonly string[];
  /** PUBLIC_URL (no trailing slash), read at each use. */
  readonly publicUrl: () => string | undefined;
}

/** Longest bind body: a credential (a JWT at most a few KiB) and an origin. */
const MAX_BIND_BODY = 16 * 1024;
/** Longest callback body: the authorization response's query (code, state, iss) and the nonce. */
const MAX_CALLBACK_BODY = 16 * 1024;

/** Whether `origin` is listed by name in CORS_ORIGINS: a `*` lets any page be the opener. */
function listed(origins: readonly string[], origin: string | undefined): origin is string {
  return origin !== undefined && origin !== '*' && origins.includes(origin);
}

/**
 * Whether a POST comes from the proxy's own pages: a cross-site request (another page driving the
 * victim's browser) carries another Origin, and browsers always send it on a POST.
 */
function sameOrigin(request: FastifyRequest, publicUrl: string): boolean {
  const fetchSite = request.headers['sec-fetch-site'];
  return (
    request.headers.origin === new URL(publicUrl).origin &&
    (fetchSite === undefined || fetchSite === 'same-origin')
  );
}

function refuse(reply: FastifyReply, error: unknown): FastifyReply {
  const { status, headers, body } = toErrorReply(error);
  return reply
    .code(status)
    .headers({ ...headers, 'cache-control': 'no-store' })
    .send(body);
}

type LandingRequest = FastifyRequest<{ Params: { key: string } }>;

/**
 * Where a redirect lands, at `${base}/:key`: a GET serves `page` (under a fresh script nonce),
 * which POSTs the answer's query and its tab's nonce back to the same path, to `finish`.
 */
function landing(
  app: FastifyInstance,
  base: string,
  page: (nonce: string) => string,
  finish: (request: LandingRequest, reply: FastifyReply) => Promise<FastifyReply>,
): void {
  app.get<{ Params: { key: string } }>(`${base}/:key`, async (_request, reply) => {
    const nonce = scriptNonce();
    return reply.code(200).headers(pageHeaders(nonce, true)).send(page(nonce));
  });
  app.post<{ Params: { key: string } }>(`${base}/:key`, { bodyLimit: MAX_CALLBACK_BODY }, finish);
}

/** Registers the OAuth broker's public routes. */
export async function oauthRoutes(app: FastifyInstance, options: OAuthRouteOptions): Promise<void> {
  const { authenticator, limiter } = options;

  /** The principal key of the opener's credential, presented from its origin. */
  async function authenticate(credential: string, origin: string, publicUrl: string, address: string) {
    const ip = rateSubject(address);
    await limiter.assertUnder('authFailuresPerIp', ip);
    try {
      return (await authenticator.authenticate(credential, origin, publicUrl)).principalKey;
    } catch (error) {
      const code = findProxyError(error)?.code;
      if (code !== undefined && CREDENTIAL_REFUSALS.has(code)) await limiter.consume('authFailuresPerIp', ip);
      throw error;
    }
  }

  /**
   * What a page the proxy was sent back to POSTs (the callback's, the login's): the answer's
   * query and the nonce its tab kept; only from the proxy's own page, with the broker on.
   */
  function returned(request: FastifyRequest, publicUrl: string | undefined, broker: OAuthBroker) {
    if (publicUrl === undefined || !broker.enabled) throw new ProxyError('oauth_state_invalid');
    if (!sameOrigin(request, publicUrl)) throw new ProxyError('oauth_bind_refused');
    const body = request.body as { query?: unknown; nonce?: unknown } | undefined;
    return {
      query: new URLSearchParams(typeof body?.query === 'string' ? body.query : ''),
      nonce: typeof body?.nonce === 'string' ? body.nonce : undefined,
    };
  }

  /** The code's bind: wrong codes count against the address too, as failed credentials do. */
  async function byCode(id: string, code: string, address: string) {
    const ip = rateSubject(address);
    await limiter.assertUnder('authFailuresPerIp', ip);
    try {
      const { authorizeUrl, state, nonce } = await (await options.broker()).links.bindByCode(id, code);
      return { authorizeUrl, state, nonce };
    } catch (error) {
      if (findProxyError(error)?.code === 'oauth_code_invalid')
        await limiter.consume('authFailuresPerIp', ip);
      throw error;
    }
  }

  app.get<{ Params: { id: string } }>('/oauth/start/:id', async (request, reply) => {
    const nonce = scriptNonce();
    const info = await (await options.broker()).links.startInfo(request.params.id);
    if (info === undefined) {
      const failure = new ProxyError('oauth_state_invalid');
      return reply.code(failure.status).headers(pageHeaders(nonce, false)).send(messagePage(failure.message));
    }
    return reply.code(200).headers(pageHeaders(nonce, true)).send(startPage(nonce, info));
  });

  app.post<{ Params: { id: string } }>(
    '/oauth/start/:id',
    { bodyLimit: MAX_BIND_BODY },
    async (request, reply) => {
      const publicUrl = options.publicUrl();
      try {
        const broker = await options.broker();
        if (publicUrl === undefined || !broker.enabled) throw new ProxyError('oauth_state_invalid');
        // Only the proxy's own start page binds.
        if (!sameOrigin(request, publicUrl)) throw new ProxyError('oauth_bind_refused');
        const body = request.body as
          | { credential?: unknown; origin?: unknown; code?: unknown; login?: unknown }
          | undefined;
        // Opened without its app (docs/oauth.md): the one-time code, or a sign-in to the proxy.
        if (typeof body?.code === 'string') {
          const bound = await byCode(request.params.id, body.code, request.ip);
          return reply.code(200).header('cache-control', 'no-store').send(bound);
        }
        if (body?.login === true) {
          const started = await broker.links.loginStart(request.params.id);
          return reply.code(200).header('cache-control', 'no-store').send(started);
        }
        const credential = typeof body?.credential === 'string' ? body.credential : '';
        const opener = typeof body?.origin === 'string' ? body.origin : undefined;
        if (credential === '')
          throw new ProxyError(
            'unauthorized',
            'No proxy credential came from the app that opened this window.',
          );
        if (!listed(options.corsOrigins(), opener)) throw new ProxyError('oauth_bind_refused');
        const principalKey = await authenticate(credential, opener, publicUrl, request.ip);
        const bound = await broker.links.bind(request.params.id, principalKey, opener);
        // No cookie (review R1): cookies are not port-separated, so on a loopback PUBLIC_URL a page
        // on another port could toss one. The nonce stays in this tab's sessionStorage instead.
        return reply
          .code(200)
          .header('cache-control', 'no-store')
          .send({ authorizeUrl: bound.authorizeUrl, state: bound.state, nonce: bound.nonce });
      } catch (error) {
        request.log.info({ code: findProxyError(error)?.code }, 'oauth bind refused');
        return refuse(reply, error);
      }
    },
  );

  // The authorization server's redirect: only the page that completes the sign-in from this tab.
  landing(app, CALLBACK_BASE, callbackPage, async (request, reply) => {
    const publicUrl = options.publicUrl();
    const tell = (origin: string | undefined) => (listed(options.corsOrigins(), origin) ? origin : undefined);
    try {
      const broker = await options.broker();
      const { query, nonce } = returned(request, publicUrl, broker);
      const outcome = await broker.callback(request.params.key, query, nonce);
      for (const ended of outcome.evicted) {
        // Review item 7: what the cap ended is said, never silently (no token, no URL query).
        request.log.warn(
          { server: ended.server, revocation: ended.revocation },
          'oauth connection evicted: the principal is past its connection cap',
        );
      }
      return reply
        .code(200)
        .header('cache-control', 'no-store')
        .send({ ok: true, server: outcome.server, openerOrigin: tell(outcome.openerOrigin) });
    } catch (error) {
      const refused = error instanceof CallbackRefused ? error : undefined;
      const { status, headers, body } = toErrorReply(refused?.error ?? error);
      request.log.warn({ code: findProxyError(refused?.error ?? error)?.code }, 'oauth callback refused');
      return reply
        .code(status)
        .headers({ ...headers, 'cache-control': 'no-store' })
        .send({ ...body, openerOrigin: tell(refused?.openerOrigin) });
    }
  });

  // The identity provider's redirect after the user signed in to the proxy: a page that POSTs
  // the answer with the nonce its tab kept, then goes on to the upstream's authorization.
  landing(app, LOGIN_BASE, loginReturnPage, async (request, reply) => {
    try {
      const broker = await options.broker();
      const { query, nonce } = returned(request, options.publicUrl(), broker);
      const bound = await broker.links.loginFinish(request.params.key, query, nonce);
      const { authorizeUrl, state, nonce: next } = bound;
      return reply.code(200).header('cache-control', 'no-store').send({ authorizeUrl, state, nonce: next });
    } catch (error) {
      request.log.warn({ code: findProxyError(error)?.code }, 'oauth login refused');
      return refuse(reply, error);
    }
  });

  app.get<{ Params: { file: string } }>(`${CLIENT_METADATA_BASE}/:file`, async (request, reply) => {
    const key = /^(.+)\.json$/.exec(request.params.file)?.[1];
    const document =
      key === undefined ? undefined : await (await options.broker()).clientMetadataDocument(key);
    if (document === undefined) return reply.code(404).send();
    return reply.code(200).header('cache-control', 'public, max-age=3600').send(document);
  });
}
