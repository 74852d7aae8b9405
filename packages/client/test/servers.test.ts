/**
 * The `server` option: servers named in the proxy's config file (a URL server and a stdio
 * command), over every transport, and an unknown name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type EverythingServer, startEverything } from '../../server/test/helpers/everything.ts';
import { type RunningProxy, startProxy } from '../../server/test/helpers/proxy.ts';
import {
  InvalidInputError,
  MCPProxyClient,
  MCPProxyError,
  NetworkError,
  type TextContent,
} from '../src/index.ts';
import { recordingFetch, TRANSPORTS } from './helpers/stack.ts';

const everythingEntry = join(
  dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist/index.js',
);

describe('named servers (the server option)', () => {
  let upstream: EverythingServer;
  let proxy: RunningProxy;
  let dir: string;
  const clients: MCPProxyClient[] = [];

  /** A client for the configured server `server`. */
  function client(server: string, transport: (typeof TRANSPORTS)[number], fetch = recordingFetch().fetch) {
    const made = new MCPProxyClient({
      proxyUrl: proxy.url,
      proxyToken: proxy.token,
      server,
      transport,
      fetch,
      timeoutMs: 20_000,
    });
    clients.push(made);
    return made;
  }

  before(async () => {
    upstream = await startEverything('streamableHttp');
    dir = mkdtempSync(join(tmpdir(), 'mcp-proxy-client-servers-'));
    const config = join(dir, 'proxy.yaml');
    writeFileSync(
      config,
      [
        'servers:',
        '  everything:',
        `    url: ${upstream.url}`,
        '  local:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(everythingEntry)}, "stdio"]`,
        '',
      ].join('\n'),
    );
    proxy = await startProxy({ MCP_PROXY_CONFIG: config, WS_ALLOW_MISSING_ORIGIN: 'true' });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    proxy.app.server.closeAllConnections();
    await proxy.close();
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of TRANSPORTS) {
    for (const server of ['everything', 'local'] as const) {
      it(`${transport}: talks to the configured ${server === 'local' ? 'stdio' : 'URL'} server "${server}"`, async () => {
        const recorder = recordingFetch();
        const named = client(server, transport, recorder.fetch);
        const init = await named.initialize();
        assert.equal(init.serverInfo.name, 'mcp-servers/everything');
        const { tools } = await named.listTools();
        assert.ok(tools.some((t) => t.name === 'echo'));
        const echo = await named.callTool('echo', { message: `hello ${server}` });
        assert.match((echo.content[0] as TextContent).text, new RegExp(`hello ${server}`));

        const first = recorder.calls[0];
        if (transport === 'http') {
          assert.equal(first?.url, `${proxy.url}/proxy`);
          assert.equal(first?.body.server, server);
          assert.equal(first?.body.mcp_server_url, undefined, 'exactly one of the two');
        } else if (transport === 'streamable') {
          assert.equal(first?.url, `${proxy.url}/servers/${server}/mcp`);
          assert.equal(first?.headers['x-mcp-server-url'], undefined);
        } else {
          assert.equal(recorder.calls.length, 0, 'over /ws nothing goes through fetch');
        }
        await named.close();
      });
    }

    it(`${transport}: an unknown server name is refused`, async () => {
      const error = await client('no-such-server', transport)
        .initialize()
        .then(
          () => assert.fail('expected a refusal'),
          (e: unknown) => e,
        );
      if (transport === 'ws') {
        // Refused before the upgrade: like a browser, the client only sees the socket fail.
        assert.ok(error instanceof NetworkError, String(error));
        assert.equal(error.code, 'network_error');
      } else {
        assert.ok(error instanceof InvalidInputError, String(error));
        assert.equal(error.code, 'unknown_server');
        assert.equal(error.status, 404);
        assert.deepEqual(error.data, { server: 'no-such-server' });
      }
      assert.ok(error instanceof MCPProxyError);
    });
  }
});
