/**
 * @module test/helpers/holding-forwarder
 * A TCP forwarder to Redis that, once armed, holds the connection that sends the next SUBSCRIBE
 * (until released): an instance whose subscription is still on its way to Redis.
 */
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Socket } from 'node:net';

/** The RESP form of a SUBSCRIBE command's name (ioredis writes it in lower case). */
const SUBSCRIBE = /\r\nsubscribe\r\n/i;

/** A TCP forwarder to Redis that, once armed, holds the connection that sends a SUBSCRIBE. */
export async function startHoldingForwarder(target: string) {
  const { hostname, port } = new URL(target);
  let armed = false;
  let heldSubscribe: (() => void) | undefined;
  const releases: Array<() => void> = [];
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    let held: Buffer[] | undefined;
    client.on('data', (chunk: Buffer) => {
      if (held === undefined && armed && SUBSCRIBE.test(chunk.toString('latin1'))) {
        armed = false;
        held = [];
        releases.push(() => {
          for (const part of held ?? []) upstream.write(part);
          held = undefined;
        });
        heldSubscribe?.();
      }
      if (held !== undefined) held.push(chunk);
      else upstream.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Resolves once the next SUBSCRIBE is held. */
    holdNextSubscribe(): Promise<void> {
      armed = true;
      return new Promise((resolve) => {
        heldSubscribe = resolve;
      });
    },
    /** Cuts every connection and refuses new ones until {@link mend} (the instance's link to Redis drops). */
    cut(): void {
      refusing = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    /** Lets connections in again after {@link cut}. */
    mend(): void {
      refusing = false;
    },
    release(): void {
      for (const release of releases.splice(0)) release();
    },
    stop(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
