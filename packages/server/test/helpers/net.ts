/**
 * Loopback networking helpers for tests: free ports and waiting for a listener.
 */
import { connect, createServer } from 'node:net';
import { eventually } from './eventually.ts';

/** A currently free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Resolves once something accepts TCP connections on 127.0.0.1:port. Throws at once when
 * `gaveUp()` says the listener will never come (its process exited), else after `timeoutMs`.
 */
export async function waitForPort(port: number, timeoutMs = 20_000, gaveUp = () => false): Promise<void> {
  const outcome = await eventually(
    () =>
      gaveUp()
        ? 'gave up'
        : new Promise<'open' | false>((resolve) => {
            const socket = connect(port, '127.0.0.1');
            socket.once('connect', () => {
              socket.destroy();
              resolve('open');
            });
            socket.once('error', () => resolve(false));
          }),
    { timeoutMs, intervalMs: 50, what: `a listener on port ${port}` },
  );
  if (outcome === 'gave up') throw new Error(`no listener on port ${port}: its process is gone`);
}
