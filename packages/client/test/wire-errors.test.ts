/**
 * The client's copies of the proxy's tables, checked against the proxy's own registry. The
 * client cannot import server code (no dependencies, browser-bundled), so it keeps a code → class
 * table and a close code → code table of its own (src/wire-errors.ts); these tests fail as soon
 * as the server gains a code, a close code or a refusal reason the client does not know, or the
 * two disagree. Every error goes through the server's real mapping functions (`toErrorReply`,
 * `toCloseFrame`) and back through the client's decoders.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REFUSAL_MESSAGES } from '../../server/src/egress/refusal.ts';
import type { EgressRefusal } from '../../server/src/egress/types.ts';
import {
  ERROR_REGISTRY,
  type ErrorCode,
  ProxyError,
  toCloseFrame,
  toErrorReply,
} from '../../server/src/errors.ts';
import {
  ERROR_CLASSES,
  MCPProxyError,
  NetworkError,
  type ProxyErrorCode,
  TargetForbiddenError,
  type TargetForbiddenReason,
} from '../src/index.ts';
import { CLOSE_CODES, errorFromClose, errorFromProxyFailure, errorFromRpcError } from '../src/wire-errors.ts';

const SERVER_CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[];

/** `true` exactly when `A` and `B` are the same union. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// Compile-time half (`tsc -p packages/client`): a code or a refusal reason on one side only
// fails to compile here.
const codesMatch: Same<ProxyErrorCode, ErrorCode> = true;
const reasonsMatch: Same<TargetForbiddenReason, EgressRefusal> = true;

/** The server's close code for `code`, through its one mapping. */
function serverCloseCode(code: ErrorCode): number {
  return toCloseFrame(new ProxyError(code)).code;
}

describe("the client's error tables against the proxy's registry", () => {
  it('ERROR_CLASSES has exactly the proxy’s codes', () => {
    assert.ok(codesMatch && reasonsMatch);
    assert.deepEqual(
      Object.keys(ERROR_CLASSES).sort(),
      [...SERVER_CODES].sort(),
      'add the missing codes to ProxyErrorCode (src/errors.ts), ERROR_CLASSES (src/wire-errors.ts) and docs/client.md',
    );
  });

  it('every code the proxy answers over HTTP decodes to its class, code, status and JSON-RPC code', () => {
    for (const code of SERVER_CODES) {
      const reply = toErrorReply(new ProxyError(code), 7);
      const error = errorFromProxyFailure({ status: reply.status, body: reply.body, requestId: 'r-1' });
      assert.ok(error instanceof ERROR_CLASSES[code], `${code} is a ${ERROR_CLASSES[code].name}`);
      assert.equal(error.code, code);
      assert.equal(error.status, ERROR_REGISTRY[code].status, code);
      assert.equal(error.rpcCode, ERROR_REGISTRY[code].rpcCode, code);
      assert.equal(error.requestId, 'r-1');
    }
  });

  it('every code the proxy sends in-band (event stream, WebSocket frame) is the proxy’s, not the server’s', () => {
    for (const code of SERVER_CODES) {
      const error = errorFromRpcError(toErrorReply(new ProxyError(code)).body.error, {}, true);
      assert.ok(error instanceof ERROR_CLASSES[code], `${code} is a ${ERROR_CLASSES[code].name}`);
      assert.equal(error?.code, code);
    }
  });

  it('every close frame of the proxy decodes to its code and class', () => {
    for (const code of SERVER_CODES) {
      const frame = toCloseFrame(new ProxyError(code));
      const error = errorFromClose(frame.code, frame.reason, true);
      assert.ok(error instanceof ERROR_CLASSES[code], `${code} (close ${frame.code})`);
      assert.equal(error.code, code);
      assert.deepEqual(error.data, { closeCode: frame.code, closeReason: frame.reason });
    }
  });

  it('every close code agrees: the client reads a bare close code as a code the proxy closes with it', () => {
    for (const [closeCode, code] of Object.entries(CLOSE_CODES)) {
      assert.ok(Object.hasOwn(ERROR_REGISTRY, code), `${closeCode}: ${code} is a proxy code`);
      assert.equal(serverCloseCode(code), Number(closeCode), `the proxy closes ${code} with ${closeCode}`);
      const error = errorFromClose(Number(closeCode), 'said in words', true);
      assert.equal(error.code, code, `a bare ${closeCode} is ${code}`);
    }
  });

  it('every close code the proxy uses is in the client’s table, but 1013 (two meanings)', () => {
    const used = new Set(SERVER_CODES.map(serverCloseCode));
    const unknown = [...used].filter((closeCode) => !Object.hasOwn(CLOSE_CODES, closeCode)).sort();
    // 1013 also closes a reader too slow to keep up, which has no stable code (src/wire-errors.ts).
    assert.deepEqual(unknown, [1013]);
    const tooSlow = errorFromClose(1013, 'reader too slow: the outbound queue is full', true);
    assert.ok(tooSlow instanceof NetworkError);
    assert.equal(tooSlow.code, 'connection_closed');
  });

  it('every refusal reason of the egress guard reads back from a TargetForbiddenError', () => {
    for (const reason of Object.keys(REFUSAL_MESSAGES)) {
      const reply = toErrorReply(new ProxyError('target_forbidden', undefined, { data: { reason } }));
      const error = errorFromProxyFailure({ status: reply.status, body: reply.body });
      assert.ok(error instanceof TargetForbiddenError);
      assert.equal(error.reason, reason);
    }
  });

  it('an unknown code of a newer proxy is a root MCPProxyError over HTTP, and the MCP server’s in-band', () => {
    const error = { code: -33999, message: 'new', data: { code: 'brand_new_code' } };
    const overHttp = errorFromProxyFailure({ status: 418, body: { jsonrpc: '2.0', id: 1, error } });
    assert.equal(overHttp.constructor, MCPProxyError);
    assert.equal(overHttp.code, 'brand_new_code');
    assert.equal(errorFromRpcError(error, {}, true), undefined);
  });
});
