/**
 * @module bench/lib/oidc-issuer
 * A minimal OpenID provider for the bench (issue 17: the cost of an OIDC bearer token next to a
 * static and a minted one): a discovery document and a JWKS on loopback, and one ES256 access
 * token for the proxy's audience, valid for the whole run. The proxy fetches the keys once; every
 * request after that is the verified-token cache, which is what the bench measures.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/** The audience the bench's proxy accepts. */
export const OIDC_AUDIENCE = 'https://mcp-proxy.bench';

/** A running bench issuer. */
export interface BenchIssuer {
  readonly issuer: string;
  /** An access token for {@link OIDC_AUDIENCE}, valid for a day. */
  readonly token: string;
  close(): Promise<void>;
}

/** Starts the issuer on 127.0.0.1 (in the bench's own process: it answers a request or two). */
export async function startBenchIssuer(): Promise<BenchIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-key', alg: 'ES256', use: 'sig' };
  let issuer = '';
  const server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer, jwks_uri: `${issuer}/jwks` }
        : req.url === '/jwks'
          ? { keys: [jwk] }
          : undefined;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Never what keeps the bench running: it ends when its measurements do.
  server.unref();
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const token = await new SignJWT({ scope: 'mcp' })
    .setProtectedHeader({ alg: 'ES256', kid: 'bench-key', typ: 'at+jwt' })
    .setIssuer(issuer)
    .setAudience(OIDC_AUDIENCE)
    .setSubject('bench-oidc-user')
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(privateKey);
  return {
    issuer,
    token,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
