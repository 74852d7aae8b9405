/**
 * A real OpenID provider (panva's `oidc-provider`) on an ephemeral loopback port, for the OIDC
 * tests: discovery, a JWKS that can rotate (a new provider with a new signing key takes over the
 * same issuer URL), client-credentials and authorization-code grants issuing JWT access tokens
 * for one audience, dynamic client registration, and a login step the test drives without a
 * browser (every login is `alice`, consent is granted). It also signs tokens of its own with the
 * provider's keys, for the refusals a real provider would never issue (wrong audience, expired).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import Provider from 'oidc-provider';

/** A client of the provider that may use the client-credentials grant. */
export const SERVICE_CLIENT = { id: 'service-client', secret: 'service-client-secret-0123456789' } as const;

/** Options of {@link startOidcIssuer}. */
export interface OidcIssuerOptions {
  /** The `aud` of every access token it issues. */
  readonly audience: string;
  /** The scope its resource server (the proxy) offers. */
  readonly scope?: string;
  /** Tokens name the RFC 8707 resource the client asked for as `aud` (not `audience`). */
  readonly audienceFromResource?: boolean;
  /** Extra claims of every access token (e.g. `groups`). */
  readonly extraClaims?: Readonly<Record<string, unknown>>;
}

/** A running provider. */
export interface TestOidcIssuer {
  /** The issuer identifier (`http://127.0.0.1:<port>`). */
  readonly issuer: string;
  /** Requests its JWKS endpoint has served. */
  readonly jwksHits: number;
  /** The `kid` of the key it signs with now. */
  readonly currentKid: string;
  /** A new signing key signs from now on; the old one stays published. Returns the new `kid`. */
  rotate(options?: { readonly dropOld?: boolean }): Promise<string>;
  /** A real access token from the client-credentials grant. */
  serviceToken(): Promise<string>;
  /**
   * A JWT signed with the current key (or no key at all for `alg: none`), any claims; `typ` is
   * `at+jwt` unless the header names another (`null`: none).
   */
  sign(
    claims: Readonly<Record<string, unknown>>,
    header?: { readonly kid?: string; readonly alg?: string; readonly typ?: string | null },
  ): Promise<string>;
  /** The public JWK of the current key. */
  publicJwk(): JWK;
  /** Follows an authorization URL through the login to the redirect; returns its `code`. */
  authorize(url: URL): Promise<string>;
  /** Follows an authorization URL through the login; returns the redirect back to the client. */
  authorizeRedirect(url: URL): Promise<URL>;
  stop(): Promise<void>;
}

interface SigningKey {
  readonly kid: string;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
}

async function newKey(index: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = `key-${index}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    kid,
    privateKey,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
  };
}

/** Starts the provider on 127.0.0.1. */
export async function startOidcIssuer(options: OidcIssuerOptions): Promise<TestOidcIssuer> {
  const scope = options.scope ?? 'mcp';
  let keys: SigningKey[] = [await newKey(1)];
  let jwksHits = 0;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => {};
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/jwks')) jwksHits++;
    const uid = /^\/interaction\/([^/?]+)/.exec(req.url ?? '')?.[1];
    if (uid !== undefined) {
      void login(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The provider's state (clients, grants, codes) in memory, kept across a rotation.
  const records = new Map<string, { payload: Record<string, unknown>; expires: number }>();
  let provider = build();
  handler = provider.callback();

  function build(): Provider {
    const next = new Provider(issuer, {
      jwks: { keys: keys.map((key) => key.privateJwk) },
      adapter: memoryAdapter(records),
      ttl: {
        ClientCredentials: 300,
        AccessToken: 300,
        AuthorizationCode: 60,
        Grant: 600,
        Interaction: 600,
        Session: 600,
      },
      clients: [
        {
          client_id: SERVICE_CLIENT.id,
          client_secret: SERVICE_CLIENT.secret,
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
        },
      ],
      scopes: ['openid', 'offline_access', scope],
      clientDefaults: { id_token_signed_response_alg: 'ES256' },
      findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        registration: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => options.audience,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, indicator: string) => ({
            scope,
            audience: options.audienceFromResource ? indicator : options.audience,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          }),
        },
      },
      extraTokenClaims: () => ({ ...options.extraClaims }),
      interactions: {
        url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
      },
      pkce: { required: () => true },
    } as never);
    // oidc-provider logs its configuration warnings to the console: the tests do not need them.
    next.on('server_error', () => {});
    return next;
  }

  /** The login step: alice, with consent to what the client asked for. */
  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const accountId = 'alice';
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
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
    const resource = details.params.resource;
    if (typeof resource === 'string') grant.addResourceScope(resource, scope);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  async function authorizeRedirect(url: URL): Promise<URL> {
    const cookies = new Map<string, string>();
    let next = url.href;
    for (let hop = 0; hop < 10; hop++) {
      const response = await fetch(next, {
        redirect: 'manual',
        headers: { cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') },
      });
      for (const line of response.headers.getSetCookie()) {
        const [pair = ''] = line.split(';');
        const at = pair.indexOf('=');
        const expired = /expires=Thu, 01 Jan 1970|max-age=0/i.test(line);
        if (expired) cookies.delete(pair.slice(0, at));
        else cookies.set(pair.slice(0, at), pair.slice(at + 1));
      }
      const location = response.headers.get('location');
      await response.body?.cancel();
      if (location === null) throw new Error(`the login stopped at ${next} with HTTP ${response.status}`);
      const target = new URL(location, next);
      if (target.origin !== issuer && target.searchParams.get('code') !== null) return target;
      if (target.searchParams.has('error')) {
        throw new Error(`authorization failed: ${target.searchParams.get('error_description')}`);
      }
      next = target.href;
    }
    throw new Error('too many redirects during the login');
  }

  return {
    issuer,
    get jwksHits() {
      return jwksHits;
    },
    get currentKid() {
      return (keys[0] as SigningKey).kid;
    },
    async rotate({ dropOld = false } = {}) {
      const key = await newKey(keys.length + 1);
      keys = dropOld ? [key] : [key, ...keys];
      provider = build();
      handler = provider.callback();
      return key.kid;
    },
    async serviceToken() {
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${SERVICE_CLIENT.id}:${SERVICE_CLIENT.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: options.audience }),
      });
      const body = (await response.json()) as { access_token?: string; error_description?: string };
      if (body.access_token === undefined) throw new Error(`no token: ${JSON.stringify(body)}`);
      return body.access_token;
    },
    async sign(claims, header = {}) {
      const key = keys[0] as SigningKey;
      const now = Math.floor(Date.now() / 1000);
      const payload = {
        iss: issuer,
        aud: options.audience,
        sub: 'alice',
        iat: now,
        exp: now + 300,
        ...claims,
      };
      if (header.alg === 'none') {
        const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
        return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.`;
      }
      return new SignJWT(payload)
        .setProtectedHeader({
          alg: header.alg ?? 'ES256',
          kid: header.kid ?? key.kid,
          ...(header.typ === null ? {} : { typ: header.typ ?? 'at+jwt' }),
        })
        .sign(key.privateKey);
    },
    publicJwk: () => (keys[0] as SigningKey).publicJwk,
    async authorize(url) {
      return (await authorizeRedirect(url)).searchParams.get('code') as string;
    },
    authorizeRedirect,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A minimal oidc-provider storage adapter over one Map (its own default warns on every start). */
function memoryAdapter(records: Map<string, { payload: Record<string, unknown>; expires: number }>) {
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
