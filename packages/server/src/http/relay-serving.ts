/**
 * @module http/relay-serving
 * The owner's side of an exchange (http/relay.ts hears the `open`): a request relayed here by
 * another instance runs through this instance's own routes (`inject`) with the principal that
 * instance authenticated, and its answer streams back in parts. Every way the owner stops short
 * says `fail`, and it keeps saying it is alive while the exchange runs.
 */
import type { ServerResponse } from 'node:http';
import type { Principal } from '../identity/principal.ts';
import type { SessionOwnership } from '../sessions/ownership.ts';
import { streamAnswer } from './relay-answer.ts';
import { ExchangeCredit, type InFlightBytes } from './relay-credit.ts';
import type { RelayLimits } from './relay-quota.ts';
import {
  ExchangeSequence,
  type Inject,
  KEEPALIVE_MS,
  LIVENESS_MS,
  type OpenMessage,
  RELAY_HEADER,
  type RelayMessage,
  type Unnumbered,
} from './relay-wire.ts';

/**
 * The owner acknowledges a relayed request only if its answer has not started by then: a fast
 * answer is its own acknowledgement (one message fewer each way).
 */
const ACK_AFTER_MS = 200;

/** A relayed exchange, on its owner. */
export interface Incoming {
  /** The owner gives the exchange up: it ends here and the relaying instance hears `fail`. */
  giveUp(): Promise<void>;
  /** The relaying side spoke about the exchange (a `cancel`: its caller left). */
  hear(message: RelayMessage): void;
}

/** A relayed request on its owner, until its route's hooks take it in. */
export interface Admission {
  readonly principal: Principal;
  /** Hears the request's response object: a cancel closes it, as a caller leaving would. */
  readonly responds: (response: ServerResponse) => void;
}

/** What the owner's side of an exchange uses (the relay's, shared by all its exchanges). */
export interface OwnerSide {
  readonly ownership: SessionOwnership;
  readonly inject: Inject;
  /** Exchanges running here for another instance, by id. */
  readonly incoming: Map<string, Incoming>;
  /** Relayed requests not yet admitted by the relay's authentication hook, by exchange. */
  readonly admitted: Map<string, Admission>;
  readonly send: (instance: string, message: RelayMessage, data?: Buffer) => Promise<void>;
  /** The exchanges, parts and windows of the relay. */
  readonly limits: RelayLimits;
  /** Answer bytes published from here and not yet acknowledged, across exchanges. */
  readonly inFlight: InFlightBytes;
}

/** Runs a request relayed here by another instance and streams its answer back. */
export async function serveRelayed(side: OwnerSide, open: OpenMessage): Promise<void> {
  const { x, from } = open;
  const sequence = new ExchangeSequence(0, 0);
  if (side.incoming.size >= side.limits.maxExchanges || side.incoming.has(x)) {
    await side.send(from, { k: 'fail', x, n: sequence.next() }).catch(() => {});
    return;
  }
  const controller = new AbortController();
  /** Whether the relaying side knows the exchange is over (its end, its `fail`, its cancel). */
  let told = false;
  let lastSent = performance.now();
  const send = async (message: Unnumbered<RelayMessage>, data?: Buffer): Promise<void> => {
    lastSent = performance.now();
    await side.send(from, { ...message, n: sequence.next() } as RelayMessage, data);
  };
  const { partBytes, windowBytes } = side.limits;
  const credit = new ExchangeCredit(side.inFlight, windowBytes, {
    signal: controller.signal,
    waitMs: LIVENESS_MS,
  });
  // Every way the owner stops short says `fail`: the relaying side would otherwise wait on
  // an exchange that no longer runs (its caller hanging while both instances are up).
  const giveUp = async () => {
    controller.abort();
    if (told) return;
    told = true;
    await send({ k: 'fail', x }).catch(() => {});
  };
  side.incoming.set(x, {
    giveUp,
    hear: (message) => {
      // A replay (anything not numbered above the last heard) is dropped; a `got` lost in
      // between is covered by the next, which counts every byte received.
      if (sequence.hear(message.n) === 'old') return;
      if (message.k === 'got') credit.acked(message.bytes);
      else if (message.k === 'cancel') {
        told = true;
        controller.abort();
      }
    },
  });
  // A cancel must reach the route as its caller leaving: `inject`'s own abort stops only
  // reading the answer once the request body has been read, and the route would run on.
  side.admitted.set(x, {
    principal: open.principal,
    responds: (response) => {
      if (controller.signal.aborted) response.destroy();
      else controller.signal.addEventListener('abort', () => response.destroy(), { once: true });
    },
  });
  const stopWatching = side.ownership.watch(from, () => void giveUp());
  let started = false;
  const ack = setTimeout(() => {
    if (!started) void send({ k: 'ack', x }).catch(() => {});
  }, ACK_AFTER_MS);
  // The relaying side ends an exchange it hears nothing about for LIVENESS_MS.
  const keepAlive = setInterval(() => {
    if (performance.now() - lastSent >= KEEPALIVE_MS / 2) void send({ k: 'ack', x }).catch(() => {});
  }, KEEPALIVE_MS);
  try {
    const answer = await side.inject({
      method: open.method,
      url: open.url,
      headers: { ...open.headers, [RELAY_HEADER]: x },
      ...(open.body === undefined ? {} : { payload: open.body }),
      payloadAsStream: true,
      signal: controller.signal,
    });
    started = true;
    clearTimeout(ack);
    await streamAnswer(answer, x, send, controller.signal, credit, partBytes);
    told = true;
  } catch {
    await giveUp();
  } finally {
    credit.release();
    clearTimeout(ack);
    clearInterval(keepAlive);
    side.incoming.delete(x);
    side.admitted.delete(x);
    stopWatching();
  }
}
