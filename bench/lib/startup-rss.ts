/**
 * @module bench/lib/startup-rss
 * Start-up memory of the proxy (issue #16 item 2): a fresh `packages/server/src/main.ts` with the
 * default configuration (only a token, the address to listen on, and private networks allowed so
 * the first request may reach a loopback upstream), its RSS read from `/proc/<pid>/status` once it
 * answers `/health` and has settled, and again after its first forwarded requests (one
 * `tools/call` through `/mcp` and one through `POST /proxy`, to `upstreamUrl`).
 *
 * `npm run bench` can call {@link measureStartupRss}; `node bench/startup-rss.ts` prints it alone.
 */
import { join } from 'node:path';
import { ECHO_CALL, NODE, PROXY_TOKEN, ROOT, SERVER_CORES } from './env.ts';
import { freePort, rssBytes, sleep, startPinned, waitForHttp } from './procs.ts';

/** Options for {@link measureStartupRss}. */
export interface StartupRssOptions {
  /** The fast upstream's `/mcp` URL the first requests go to. */
  readonly upstreamUrl: string;
  /** Checkout to run the proxy from (default: this one). */
  readonly root?: string;
  /** Time to let the process settle after it first answers, before RSS is read (default 500 ms). */
  readonly settleMs?: number;
}

/** RSS of one fresh proxy, in bytes. */
export interface StartupRss {
  /** Once it answers /health and has settled. */
  readonly afterStart: number;
  /** After its first /mcp and POST /proxy requests. */
  readonly afterFirstRequest: number;
}

/** Starts a proxy with the default configuration and reads its RSS after start and after the first requests. */
export async function measureStartupRss(options: StartupRssOptions): Promise<StartupRss> {
  const root = options.root ?? ROOT;
  const settleMs = options.settleMs ?? 500;
  const port = await freePort();
  const proc = startPinned(NODE, [join(root, 'packages/server/src/main.ts')], {
    name: 'proxy (start-up RSS)',
    cores: SERVER_CORES,
    cwd: root,
    cleanEnv: true,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      PROXY_TOKEN,
      ALLOW_PRIVATE_NETWORKS: 'true',
      // A developer's .env must not change what is measured.
      DOTENV_PATH: join(ROOT, 'bench/.cache/no.env'),
    },
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/health`);
    await sleep(settleMs);
    const afterStart = rssBytes(proc.pid);
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'x-proxy-token': PROXY_TOKEN,
    };
    const mcp = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...headers, 'x-mcp-server-url': options.upstreamUrl },
      body: JSON.stringify(ECHO_CALL),
    });
    await mcp.arrayBuffer();
    const proxied = await fetch(`${base}/proxy`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ mcp_server_url: options.upstreamUrl, ...ECHO_CALL }),
    });
    await proxied.arrayBuffer();
    if (mcp.status !== 200 || proxied.status !== 200)
      throw new Error(`first requests answered ${mcp.status} (/mcp) and ${proxied.status} (POST /proxy)`);
    await sleep(settleMs);
    return { afterStart, afterFirstRequest: rssBytes(proc.pid) };
  } finally {
    await proc.stop();
  }
}
