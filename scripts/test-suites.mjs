#!/usr/bin/env node
/**
 * The last step of `npm test`: the server and the client suites at once (issue 15). They share
 * no state (each test listens on ports of its own), and much of each suite waits on timers and
 * child processes, so side by side they take little more than the longer one alone. The server
 * suite's output streams as it comes; the client suite's is held and printed once the server's
 * has ended, so the two never interleave. Exits non-zero when either suite fails.
 */
import { spawn } from 'node:child_process';

/** Runs one workspace's `npm test`; `live` streams its output, else it is kept for later. */
function runSuite(workspace, live) {
  const started = performance.now();
  const child = spawn('npm', ['run', 'test', '-w', workspace], {
    stdio: live ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  });
  const held = [];
  if (!live) {
    child.stdout.on('data', (chunk) => held.push(chunk));
    child.stderr.on('data', (chunk) => held.push(chunk));
  }
  return new Promise((resolve) => {
    child.on('close', (code, signal) =>
      resolve({
        workspace,
        ok: code === 0,
        ended: signal ? `signal ${signal}` : `exit ${code}`,
        seconds: (performance.now() - started) / 1000,
        output: Buffer.concat(held),
      }),
    );
  });
}

const client = runSuite('mcp-proxy-client', false);
const server = await runSuite('mcp-proxy-server', true);
const clientDone = await client;
process.stdout.write(clientDone.output);
for (const suite of [server, clientDone])
  process.stdout.write(`${suite.workspace}: ${suite.ended} after ${suite.seconds.toFixed(1)} s\n`);
process.exitCode = server.ok && clientDone.ok ? 0 : 1;
