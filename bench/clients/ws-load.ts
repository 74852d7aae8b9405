/**
 * @module bench/clients/ws-load
 * WebSocket load for `WS /ws`: `sockets` sockets, each keeping `inflight` tools/call requests
 * outstanding (a new one sent as each answer arrives). Warms up, then measures for `seconds`.
 * Prints `MEASURE-START`, `MEASURE-END`, then `RESULT {json}` (latencies in µs).
 *
 * Usage: `node bench/clients/ws-load.ts '{"url":…,"protocols":[…],"origin":…,"sockets":1,
 *   "inflight":1,"warmupSeconds":1,"seconds":3}'`
 */
import WebSocket from 'ws';

interface Options {
  readonly url: string;
  readonly protocols: string[];
  readonly origin: string;
  readonly sockets: number;
  readonly inflight: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const BEFORE = '{"jsonrpc":"2.0","id":';
const AFTER = ',"method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"}}}';

let measuring = false;
let running = true;
let answered = 0;
let errors = 0;
const latencies: number[] = [];

function connect(index: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(options.url, options.protocols, {
      headers: { origin: options.origin },
      perMessageDeflate: false,
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => {
      reject(new Error(`socket ${index}: handshake refused with ${response.statusCode}`));
    });
  });
}

function drive(ws: WebSocket, index: number): void {
  const sentAt = new Map<string, bigint>();
  let next = 0;
  const sendOne = () => {
    const id = `s${index}-${next++}`;
    sentAt.set(id, process.hrtime.bigint());
    ws.send(`${BEFORE}${JSON.stringify(id)}${AFTER}`);
  };
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { id?: string; result?: unknown };
    const started = message.id === undefined ? undefined : sentAt.get(message.id);
    if (message.id !== undefined) sentAt.delete(message.id);
    if (measuring) {
      if (message.result === undefined) errors++;
      if (started !== undefined) {
        answered++;
        latencies.push(Number(process.hrtime.bigint() - started) / 1000);
      }
    }
    if (running) sendOne();
  });
  ws.on('close', (code) => {
    if (running) {
      process.stderr.write(`socket ${index} closed early (${code})\n`);
      errors++;
    }
  });
  for (let i = 0; i < options.inflight; i++) sendOne();
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const sockets: WebSocket[] = [];
for (let i = 0; i < options.sockets; i += 64) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(64, options.sockets - i) }, (_, k) => connect(i + k)),
  );
  sockets.push(...batch);
}
sockets.forEach((ws, index) => {
  drive(ws, index);
});
await new Promise((resolve) => setTimeout(resolve, options.warmupSeconds * 1000));
measuring = true;
process.stdout.write('MEASURE-START\n');
const started = process.hrtime.bigint();
await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
measuring = false;
running = false;
process.stdout.write('MEASURE-END\n');
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const sorted = Float64Array.from(latencies).sort();
process.stdout.write(
  `RESULT ${JSON.stringify({
    requests: answered,
    rps: answered / seconds,
    errors,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
  })}\n`,
);
for (const ws of sockets) ws.terminate();
process.exit(0);
