/**
 * Review 10 (grants of now), finding 1: a 2026-07-28 client's pooled session on a virtual server
 * is keyed by the subject and the grants of the request that finds it, but answers with the
 * grants of the token that OPENED it, verified again after a reload. Two OIDC tokens of one
 * subject (other groups, equal grants before the reload) share it; a reload that widens only the
 * first token's group gives the second token the first one's members.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { modernHeaders, modernRequest } from './helpers/modern-client.ts';
import { startOidcIssuer, type TestOidcIssuer } from './helpers/oidc-issuer.ts';
import { featureStdio, startVirtualProxy, type VirtualProxy } from './helpers/virtual-proxy.ts';

const AUDIENCE = 'https://mcp-proxy.test';

function configOf(everythingUrl: string, issuer: string, alphaServers: string[]): object {
  return {
    servers: { everything: { url: everythingUrl, transport: 'streamable-http' }, local: featureStdio() },
    virtualServers: { workspace: { servers: ['everything', 'local'] } },
    oidc: {
      issuers: [
        {
          issuer,
          audience: AUDIENCE,
          claims: {
            groups: {
              alpha: { servers: alphaServers },
              beta: { servers: ['workspace', 'everything'] },
            },
          },
        },
      ],
    },
  };
}

describe('review10 grants 1: a pooled virtual session shared by two tokens of one subject', () => {
  let world: VirtualProxy;
  let idp: TestOidcIssuer;

  before(async () => {
    idp = await startOidcIssuer({ audience: AUDIENCE });
    world = await startVirtualProxy((url) => configOf(url, idp.issuer, ['workspace', 'everything']));
  });
  after(async () => {
    await world?.stop();
    await idp?.stop();
  });

  /** The answer to one 2026-07-28 request of `token` on `workspace`. */
  // biome-ignore lint/suspicious/noExplicitAny: answers are arbitrary JSON.
  const ask = async (token: string, method: string, params: Record<string, unknown>): Promise<any> => {
    const body = modernRequest(1, method, params);
    const response = await fetch(`${world.proxy.url}/servers/workspace/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: `Bearer ${token}`,
        ...modernHeaders(body),
      },
      body: JSON.stringify(body),
    });
    return response.json();
  };

  /** Every tool name a 2026-07-28 client with `token` lists on `workspace` (all pages). */
  const listTools = async (token: string): Promise<string[]> => {
    const names: string[] = [];
    let cursor: string | undefined;
    let id = 0;
    do {
      const body = modernRequest(++id, 'tools/list', cursor === undefined ? {} : { cursor });
      const response = await fetch(`${world.proxy.url}/servers/workspace/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
          ...modernHeaders(body),
        },
        body: JSON.stringify(body),
      });
      const answer = (await response.json()) as {
        result?: { tools: { name: string }[]; nextCursor?: string };
        error?: unknown;
      };
      assert.ok(answer.result, `tools/list answered ${response.status} ${JSON.stringify(answer)}`);
      names.push(...answer.result.tools.map((tool) => tool.name));
      cursor = answer.result.nextCursor;
    } while (cursor !== undefined);
    return names;
  };

  it('gives the second token its own grants, not the widened grants of the token that opened the session', async () => {
    const alpha = await idp.sign({ sub: 'shared-subject', groups: ['alpha'] });
    const beta = await idp.sign({ sub: 'shared-subject', groups: ['beta'] });
    // Equal grants before the reload: alpha's request opens the subject's pooled session.
    assert.ok(!(await listTools(alpha)).some((name) => name.startsWith('local__')));
    assert.ok(!(await listTools(beta)).some((name) => name.startsWith('local__')));
    // Only alpha's group is widened to `local`; beta's grant is as it was.
    world.reload(configOf(world.everything.url, idp.issuer, ['workspace', 'everything', 'local']));
    assert.ok(
      (await listTools(alpha)).some((name) => name.startsWith('local__')),
      'alpha is widened',
    );
    const betaNow = await listTools(beta);
    assert.ok(betaNow.includes('everything__echo'), betaNow.join());
    assert.ok(
      !betaNow.some((name) => name.startsWith('local__')),
      `beta's grant never named local, yet it lists: ${betaNow.filter((name) => name.startsWith('local__')).join()}`,
    );
    const called = await ask(beta, 'tools/call', { name: 'local__echo', arguments: { message: 'hi' } });
    assert.ok(
      called.error !== undefined,
      `beta called a member it was never granted: ${JSON.stringify(called)}`,
    );
  });
});
