/**
 * Issue #16 (start-up memory): the proxy loads the undici parts it uses from their own files
 * (src/egress/undici-parts.ts), not undici's index. Those files are undici's layout, not its
 * API: this checks they still hold what the index exports, so an upgrade that moves or changes
 * them fails here, not on a request.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import * as undici from 'undici';
import { Agent, buildConnector } from '../src/egress/undici-parts.ts';

describe("undici's parts", () => {
  it("are the index's own Agent, buildConnector and request API", () => {
    assert.equal(Agent, undici.Agent);
    assert.equal(buildConnector, undici.buildConnector);
    // The index's request(url, options) calls the API the index also puts on every dispatcher.
    const apiRequest: unknown = createRequire(import.meta.url)('undici/lib/api/api-request.js');
    assert.equal(apiRequest, (undici.Dispatcher.prototype as { request?: unknown }).request);
  });
});
