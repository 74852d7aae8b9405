/**
 * The OAuth test world (the server's test/helpers/oauth-world.ts: oidc-provider and an upstream
 * MCP server that accepts only its tokens) behind an in-process proxy with the OAuth broker on,
 * everything on loopback. `PUBLIC_URL` is the proxy's own address, so its port is chosen first.
 */
import { freePort } from '../../../server/test/helpers/net.ts';
import { type OAuthWorld, startOAuthWorld } from '../../../server/test/helpers/oauth-world.ts';
import { type RunningProxy, startProxy } from '../../../server/test/helpers/proxy.ts';

/** The static proxy token of principal `name`: every stack accepts those of {@link PRINCIPALS}. */
export function tokenOf(name: string): string {
  return `${name}-proxy-token-0123456789abcdef`;
}

/** The principals every stack knows (each its own vault entries). */
export const PRINCIPALS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'] as const;

/** A running world and proxy. */
export interface OAuthStack {
  readonly world: OAuthWorld;
  readonly proxy: RunningProxy;
  /** The proxy's `PUBLIC_URL` (= its URL). */
  readonly publicUrl: string;
  close(): Promise<void>;
}

/** Starts the world and a proxy with the broker on; `env` goes over the defaults. */
export async function startOAuthStack(env: Record<string, string> = {}): Promise<OAuthStack> {
  const world = await startOAuthWorld();
  let proxy: RunningProxy;
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  try {
    proxy = await startProxy({
      PORT: String(port),
      PUBLIC_URL: publicUrl,
      OAUTH_BROKER: 'true',
      // Node's WebSocket sends no Origin (browsers always do).
      WS_ALLOW_MISSING_ORIGIN: 'true',
      PROXY_TOKENS: PRINCIPALS.map(tokenOf).join(','),
      ...env,
    });
  } catch (error) {
    await world.stop();
    throw error;
  }
  return {
    world,
    proxy,
    publicUrl,
    async close() {
      proxy.app.server.closeAllConnections();
      await proxy.close();
      await world.stop();
    },
  };
}
