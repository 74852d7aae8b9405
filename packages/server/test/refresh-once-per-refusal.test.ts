/**
 * Review 10 (hardening), HARD-2: messages of one session the proxy holds, refused together by the
 * upstream (401: the broker's token expired there), cost one refresh. The refusal names the token
 * the message went with; once another message's refusal replaced it, the newer token is used
 * again, never refreshed in turn (a refresh of a valid token, one per message in flight). Against
 * the OAuth test world's HTTP+SSE upstream, whose refusals the test lets go one at a time: the
 * second refusal comes once the first message was refreshed, sent again and answered.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ManualClock } from './helpers/manual-clock.ts';
import { mcpFetch, modernHeaders, modernRequest } from './helpers/modern-client.ts';
import { ALICE, APP, bindAs, type OAuthSetup, setupOAuth } from './helpers/oauth-proxy.ts';
import { postProxy } from './helpers/proxy.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Holds the upstream's first two refusals of a presented token until the test lets each go. */
class RefusalGate {
  armed = false;
  readonly #held: Array<() => void> = [];
  #seen = 0;
  #twoHeld: () => void = () => {};
  /** Resolves once two refusals are held. */
  readonly twoHeld = new Promise<void>((resolve) => {
    this.#twoHeld = resolve;
  });

  /** The world's `beforeRefusal`. */
  readonly hold = (): Promise<void> => {
    if (!this.armed || this.#seen >= 2) return Promise.resolve();
    this.#seen++;
    return new Promise<void>((release) => {
      this.#held.push(release);
      if (this.#held.length === 2) this.#twoHeld();
    });
  };

  /** Lets the oldest held refusal go. */
  release(): void {
    this.#held.shift()?.();
  }
}

/** The `sub` a `whoami` answer (a tools/call result) names. */
function subOf(result: unknown): string {
  const content = (result as { content: Array<{ text: string }> }).content;
  return JSON.parse((content[0] as { text: string }).text).sub;
}

let nextId = 1;

/** Alice signs in from a first refused call and is served; the world's refusals then go through `gate`. */
async function signedIn(gate: RefusalGate, upstreamClock: ManualClock): Promise<OAuthSetup> {
  const s = await setupOAuth(
    cleanup,
    {},
    { transport: 'sse', clock: upstreamClock, beforeRefusal: gate.hold },
  );
  const call = () =>
    postProxy(
      { url: s.proxy.url, token: ALICE },
      {
        mcp_server_url: s.world.upstream.url,
        transport: 'sse',
        ...modernRequest(nextId++, 'tools/call', { name: 'whoami', arguments: {} }),
      },
      { origin: APP },
    );
  const refused = await call();
  assert.equal(refused.body?.error?.data?.code, 'upstream_auth_required', JSON.stringify(refused.body));
  const done = await s.world.user('alice').authorize(refused.body.error.data.authorizeUrl, {
    follow: true,
    bind: bindAs(ALICE),
  });
  assert.equal(done.callback?.status, 200, done.callback?.body);
  return s;
}

/**
 * Two `whoami` calls through one session, both sent with the token the upstream now refuses:
 * the first refusal is let go, its call answered, then the second. Both must serve alice, after
 * one refresh.
 */
async function refusedTogether(
  s: OAuthSetup,
  gate: RefusalGate,
  upstreamClock: ManualClock,
  whoami: () => Promise<unknown>,
) {
  assert.equal(subOf(await whoami()), 'alice', 'the session serves before the token expires upstream');
  gate.armed = true;
  upstreamClock.advance(61_000);
  const calls = [whoami(), whoami()];
  await gate.twoHeld;
  gate.release();
  const first = await Promise.race(calls);
  assert.equal(subOf(first), 'alice');
  gate.release();
  for (const result of await Promise.all(calls)) assert.equal(subOf(result), 'alice');
  const refreshes = s.world.as.events.filter((e) => e === 'token:refresh_token').length;
  assert.equal(refreshes, 1, 'one refresh for the two refused calls');
  assert.equal(s.world.upstream.sseStreams(), 1, 'the session opened first still serves');
}

describe('review10 HARD-2: messages refused together cost one refresh', () => {
  it('/mcp, a held session (an SDK v1 client)', async () => {
    const gate = new RefusalGate();
    const upstreamClock = new ManualClock();
    const s = await signedIn(gate, upstreamClock);
    const client = new Client({ name: 'review10-hard-2', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${s.proxy.url}/mcp`), {
      requestInit: {
        headers: {
          'x-proxy-token': ALICE,
          'x-mcp-server-url': s.world.upstream.url,
          'x-mcp-transport': 'sse',
        },
      },
    });
    await client.connect(transport);
    cleanup.push(() => client.close());
    await refusedTogether(s, gate, upstreamClock, () => client.callTool({ name: 'whoami', arguments: {} }));
  });

  it('/mcp, pooled (a 2026-07-28 caller)', async () => {
    const gate = new RefusalGate();
    const upstreamClock = new ManualClock();
    const s = await signedIn(gate, upstreamClock);
    const whoami = async () => {
      const message = modernRequest(nextId++, 'tools/call', { name: 'whoami', arguments: {} });
      const response = await mcpFetch({ url: s.proxy.url, token: ALICE }, s.world.upstream.url, {
        body: message,
        headers: { ...modernHeaders(message), 'x-mcp-transport': 'sse', accept: 'application/json' },
      });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return JSON.parse(text).result;
    };
    await refusedTogether(s, gate, upstreamClock, whoami);
  });
});
