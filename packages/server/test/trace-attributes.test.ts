/**
 * Issue 21 review: the span attributes taken from a message never hold a resource URI's path or
 * opaque part (resources/read's argument: a data: URI, a capability URL, a vault token).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageAttributes } from '../src/http/trace-hooks.ts';

function resourceAttributes(uri: string) {
  return messageAttributes({ method: 'resources/read', params: { uri } });
}

describe('span attributes of a resources/* message', () => {
  it('keep only the scheme and host of a resource URI', () => {
    const cases: [string, string | undefined][] = [
      ['data:text/plain;base64,c2stbGl2ZS1TRUNSRVQ=', 'data:'],
      ['https://files.example/share/sk-live-0123456789abcdef/report.pdf?x=1#y', 'https://files.example'],
      ['https://user:pw@files.example:8443/a', 'https://files.example:8443'],
      ['vault:token=hvs.SECRET', 'vault:'],
      ['file:///home/alice/secret.txt', 'file:'],
      ['not a uri sk-live-SECRET', undefined],
    ];
    for (const [uri, expected] of cases) {
      const attributes = resourceAttributes(uri);
      assert.equal(attributes['mcp_proxy.resource.origin'], expected, uri);
      const all = JSON.stringify(attributes);
      assert.doesNotMatch(all, /SECRET|sk-live|secret|report|alice|pw|c2st/, uri);
    }
  });
});
