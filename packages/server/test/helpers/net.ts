/**
 * Loopback networking helpers for tests: free ports and waiting for a listener.
 */
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { eventually } from './eventually.ts';

/**
 * Ports a test picks and binds later come from below the kernel's ephemeral range: a port inside
 * it, free when picked, can be taken before the test binds it by any `listen(0)` or outgoing
 * connection on the machine (the suite runs files side by side), and then the test's listener
 * fails with EADDRINUSE or its client reaches a stranger. Below the range only another
 * `freePort` can pick it: each test process walks its own slice, chosen by its pid.
 */
const SLICE = 400;
const FLOOR = 10_000;

function ephemeralFloor(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > FLOOR + SLICE ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function portWalk(): () => number {
  const slices = Math.floor((ephemeralFloor() - FLOOR) / SLICE);
  const base = FLOOR + (process.pid % slices) * SLICE;
  let next = Math.floor(Math.random() * SLICE);
  return () => base + (next++ % SLICE);
}

const nextCandidate = portWalk();

function bindable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A currently free TCP port on 127.0.0.1, below the ephemeral range (see above). */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < SLICE; tries++) {
    const port = nextCandidate();
    if (await bindable(port)) return port;
  }
  throw new Error("no free port in this test process's slice");
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
