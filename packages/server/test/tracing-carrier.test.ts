/**
 * Issue 21 review: what a caller's W3C trace context may make the proxy's spans do. A huge
 * `tracestate` is not kept by the spans (each would hold it until exported: heap exhaustion with a
 * slow collector); a caller's "not sampled" flag does not hide its requests from the operator's
 * traces. Spans go to an OTLP/HTTP receiver on loopback.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Tracing } from '../src/observability/tracing.ts';
import { startChildProxy } from './helpers/child-proxy.ts';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

describe('a caller’s trace context', () => {
  let server: Server;
  let bodies: string[];
  let tracing: Tracing;

  beforeEach(async () => {
    bodies = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    tracing = await Tracing.create({ endpoint, serviceName: 'test', recordSubject: false });
  });

  afterEach(async () => {
    await tracing.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a tracestate within 512 characters is carried on', () => {
    const span = tracing.server('tools/list', { traceparent: PARENT, tracestate: 'vendor=abc' }, {});
    assert.equal(span.headers().tracestate, 'vendor=abc');
    span.end();
  });

  it('a longer tracestate is not kept by the span (the trace itself is still continued)', () => {
    const big = `k=v,${'x'.repeat(1_000_000)}`;
    const span = tracing.server('tools/list', { traceparent: PARENT, tracestate: big }, {});
    const headers = span.headers();
    assert.equal(headers.tracestate, undefined);
    assert.match(headers.traceparent ?? '', new RegExp(`^00-${TRACE_ID}-`));
    span.end();
  });

  it('a traceparent longer than 55 characters (a future version with more fields) starts a new trace', () => {
    const span = tracing.server(
      'tools/list',
      { traceparent: `cc-${TRACE_ID}-b7ad6b7169203331-01-${'f'.repeat(10_000)}` },
      {},
    );
    assert.doesNotMatch(span.headers().traceparent ?? '', new RegExp(TRACE_ID));
    span.end();
  });

  it('a caller’s "not sampled" flag (00) does not keep its request out of the traces', async () => {
    const hidden = `00-${TRACE_ID}-b7ad6b7169203331-00`;
    const span = tracing.server('tools/call unsampled', { traceparent: hidden }, {});
    assert.match(span.headers().traceparent ?? '', new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    span.end();
    await tracing.flush();
    const exported = bodies.join('\n');
    assert.match(exported, /tools\/call unsampled/);
    assert.match(exported, new RegExp(TRACE_ID, 'i'));
  });
});

describe('a caller’s huge tracestate, with a collector that never answers', () => {
  it('does not exhaust a proxy’s heap (spans waiting for export do not hold it)', async () => {
    const sockets: Socket[] = [];
    const hole = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', () => resolve()));
    const collector = `http://127.0.0.1:${(hole.address() as AddressInfo).port}`;
    // 250 spans holding 1 MB each would need twice this heap.
    const proxy = await startChildProxy({ OTEL_EXPORTER_OTLP_ENDPOINT: collector }, 128);
    try {
      const big = `k=v,${'x'.repeat(1_000_000)}`;
      for (let i = 0; i < 250 && proxy.alive(); i++) {
        const body = JSON.stringify({
          jsonrpc: '2.0',
          id: i,
          method: 'tools/list',
          params: { _meta: { traceparent: PARENT, tracestate: big } },
        });
        await fetch(`${proxy.url}/mcp`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${proxy.token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body,
        })
          .then((reply) => reply.arrayBuffer())
          .catch(() => {});
      }
      assert.ok(proxy.alive(), `the proxy died: ${proxy.output().slice(-2000)}`);
    } finally {
      for (const socket of sockets) socket.destroy();
      hole.close();
      await proxy.stop();
    }
  });
});
