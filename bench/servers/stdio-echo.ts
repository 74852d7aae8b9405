/**
 * @module bench/servers/stdio-echo
 * The fast responder as a stdio MCP server (newline-delimited JSON-RPC), for comparing proxies
 * that can only front stdio servers. It answers as fast as it reads.
 *
 * Usage: `node bench/servers/stdio-echo.ts`
 */
import { createInterface } from 'node:readline';
import { respondAll } from './responder.ts';

const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return;
  }
  const answer = respondAll(parsed);
  if (answer !== undefined) process.stdout.write(`${JSON.stringify(answer)}\n`);
});
lines.on('close', () => process.exit(0));
