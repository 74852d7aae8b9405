/**
 * @module bench/lib/heap-probe
 * Preloaded into the leak check's proxy (`--expose-gc --import`): on SIGUSR2 it runs a full
 * garbage collection and writes the live heap to stderr, so the bench can tell memory the proxy
 * still holds (a leak) from RSS the allocator has not handed back.
 */
const gc = (globalThis as { gc?: () => void }).gc;
let asked = 0;
process.on('SIGUSR2', () => {
  gc?.();
  gc?.();
  // Numbered, so the bench knows the line answers its latest signal.
  process.stderr.write(`mcp-proxy-bench-heap ${++asked} ${process.memoryUsage().heapUsed}\n`);
});
