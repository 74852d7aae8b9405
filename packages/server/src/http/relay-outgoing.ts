/**
 * @module http/relay-outgoing
 * The relaying side of an exchange (http/relay.ts decides to relay): the instance that received
 * a request for a session held elsewhere sends it to the owner, streams the answer back to its
 * caller, and tells a gone owner (the request goes on here, as not found) from one that is alive
 * but did not see the exchange through (the caller is told to retry).
 */

import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { SessionOwnership } from '../sessions/ownership.ts';
import { type RelayQuota, relayInterrupted } from './relay-quota.ts';
import {
  ExchangeSequence,
  LIVENESS_MS,
  type OpenMessage,
  type PartMessage,
  type RelayMessage,
  relayedBody,
  relayedHeaders,
  relayedUrl,
} from './relay-wire.ts';

/**
 * How long an owner has to acknowledge a relayed request; then its heartbeat is looked at: gone,
 * the request goes on here (not found); alive, the caller is told to retry.
 */
export const ACK_TIMEOUT_MS = 2_000;
/** Bytes a relayed answer may queue for a slow caller before the exchange is given up. */
const MAX_QUEUED_BYTES = 4 * 1_048_576;

/** A relayed exchange, on the instance that received it. */
export interface Outgoing {
  readonly owner: string;
  /** Hears the owner's `message` (a part's bytes beside it). */
  on(message: RelayMessage, data: Buffer | undefined): void;
  /** Ends it (the relay closing or having missed messages): the caller is told to retry. */
  abandon(): void;
}

/** What the relaying side of an exchange uses (the relay's, shared by all its exchanges). */
export interface RelayingSide {
  readonly ownership: SessionOwnership;
  readonly onError: (error: Error) => void;
  readonly tracing?: Tracing | undefined;
  /** Exchanges relayed from here, by id: the relay routes the owner's messages to them. */
  readonly outgoing: Map<string, Outgoing>;
  readonly send: (instance: string, message: RelayMessage, data?: Buffer) => Promise<void>;
  /** The exchanges and held bytes every exchange relayed from here counts against. */
  readonly quota: RelayQuota;
}

/**
 * Sends `request` to `owner` and answers with what comes back; resolves false when the owner
 * turned out to be gone before answering (the request goes on here).
 */
export function relayTo(
  side: RelayingSide,
  request: FastifyRequest,
  reply: FastifyReply,
  owner: string,
): Promise<boolean> {
  const raw = reply.raw;
  // A caller that left during the owner lookup has no `close` left to fire: relaying for it
  // would open an exchange (a GET stream, say) that nobody ever ends.
  if (raw.destroyed || request.socket.destroyed) return Promise.reject(new ProxyError('session_not_found'));
  const principalKey = (request.identity as Principal).principalKey;
  try {
    side.quota.enter(principalKey);
  } catch (error) {
    return Promise.reject(error);
  }
  const x = randomBytes(16).toString('base64url');
  const tracing = side.tracing;
  const span =
    tracing?.enabled === true ? tracing.client('relay', { 'mcp_proxy.relay.owner': owner }) : undefined;
  return new Promise<boolean>((resolve, reject) => {
    let body: PassThrough | undefined;
    /** The answer's status and headers, once heard; a whole (JSON) answer's bytes so far. */
    let head: PartMessage['head'];
    const whole: Buffer[] = [];
    /** Answer bytes received, acknowledged to the owner in each `got`. */
    let received = 0;
    let settled = false;
    /** Answer bytes this exchange holds here for its caller (counted in the quota). */
    let held = 0;
    const holding = (bytes: number): boolean => {
      if (!side.quota.hold(bytes - held)) return false;
      held = bytes;
      return true;
    };
    const finish = () => {
      span?.end();
      settled = true;
      side.quota.hold(-held);
      held = 0;
      side.quota.leave(principalKey);
      side.outgoing.delete(x);
      clearTimeout(silence);
      stopWatching();
      raw.off('close', onCallerClose);
    };
    // This side's `open` is 0; the owner numbers its messages from 1.
    const sequence = new ExchangeSequence(0, 0);
    const cancel = () => void side.send(owner, { k: 'cancel', x, n: sequence.next() }).catch(() => {});
    /** The owner is gone (its heartbeat expired): the request goes on here, as not found. */
    const ownerGone = () => {
      if (settled) return;
      span?.end('relay_not_answered');
      finish();
      cancel();
      if (body === undefined) resolve(false);
      else body.destroy(new Error('the instance holding the session is gone'));
    };
    /**
     * The owner lives but did not see the exchange through: its session still exists there,
     * so the caller is told to retry, never that it is not found.
     */
    const interrupted = () => {
      if (settled) return;
      finish();
      cancel();
      if (body === undefined) reject(relayInterrupted());
      else body.destroy(new Error('the relayed exchange was interrupted'));
    };
    /** Nothing heard in time: only an expired heartbeat makes the owner gone. */
    const onSilence = () => {
      if (settled) return;
      const before = words;
      side.ownership.alive(owner).then(
        // A word that arrived during the look-up ends the silence.
        (alive) => words === before && (alive ? interrupted() : ownerGone()),
        (error: Error) => {
          side.onError(error);
          if (words === before) interrupted();
        },
      );
    };
    let silence = setTimeout(onSilence, ACK_TIMEOUT_MS);
    /** Messages heard from the owner about this exchange. */
    let words = 0;
    /** The owner spoke: it has {@link LIVENESS_MS} to speak again. */
    const heard = () => {
      words++;
      clearTimeout(silence);
      silence = setTimeout(onSilence, LIVENESS_MS);
    };
    const stopWatching = side.ownership.watch(owner, ownerGone);
    const onCallerClose = () => {
      if (settled || raw.writableFinished) return;
      finish();
      cancel();
      if (body === undefined) reject(new ProxyError('session_not_found'));
      else body.destroy();
    };
    raw.once('close', onCallerClose);
    side.outgoing.set(x, {
      owner,
      abandon: interrupted,
      on: (message, data) => {
        if (settled) return;
        const order = sequence.hear(message.n);
        // A replay (whoever can publish to the store, within the seal's freshness) is dropped;
        // a message lost in between leaves the answer with a hole: the exchange cannot go on.
        if (order === 'old') return;
        if (order === 'gap') {
          interrupted();
          return;
        }
        switch (message.k) {
          case 'ack':
            heard();
            return;
          case 'part': {
            heard();
            if (data !== undefined) {
              received += data.length;
              // The owner publishes more only as what it sent arrives (http/relay-credit.ts).
              void side.send(owner, { k: 'got', x, n: sequence.next(), bytes: received }).catch(() => {});
            }
            head ??= message.head;
            if (head === undefined) return;
            if (!head.headers['content-type']?.startsWith('text/event-stream')) {
              // A whole answer (JSON): gathered, then sent with its length, or, cut short, retried.
              if (data !== undefined) {
                whole.push(data);
                if (!holding(held + data.length)) return interrupted();
              }
              if (!message.end) return;
              const { status, headers } = head;
              finish();
              reply.code(status);
              for (const [name, value] of Object.entries(headers)) reply.header(name, value);
              reply.send(whole.length === 0 ? undefined : Buffer.concat(whole));
              resolve(true);
              return;
            }
            if (message.head !== undefined && body === undefined) {
              const stream = new PassThrough();
              body = stream;
              stream.on('drain', () => {
                if (!settled) holding(stream.writableLength);
              });
              // However the answer stream ends here (the caller gone, Fastify giving up on it),
              // the owner stops producing it.
              body.once('close', () => {
                if (settled) return;
                finish();
                cancel();
              });
              reply.code(message.head.status);
              for (const [name, value] of Object.entries(message.head.headers)) reply.header(name, value);
              reply.send(body);
              resolve(true);
            }
            if (body === undefined) return;
            if (data !== undefined) body.write(data);
            if (message.end) {
              finish();
              body.end();
            } else if (body.writableLength > MAX_QUEUED_BYTES || !holding(body.writableLength)) {
              // A caller this slow (or callers holding this much here together) loses the exchange.
              finish();
              cancel();
              body.destroy(new Error('the caller reads too slowly'));
            }
            return;
          }
          case 'fail':
            interrupted();
            return;
        }
      },
    });
    side
      .send(owner, {
        k: 'open',
        x,
        n: 0,
        from: side.ownership.instanceId,
        method: request.method as OpenMessage['method'],
        url: relayedUrl(request),
        headers:
          span === undefined ? relayedHeaders(request) : { ...relayedHeaders(request), ...span.headers() },
        ...(request.body === undefined ? {} : { body: JSON.stringify(relayedBody(request)) }),
        principal: request.identity as Principal,
      })
      .catch(interrupted);
  });
}
