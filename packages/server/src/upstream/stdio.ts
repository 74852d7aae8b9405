/**
 * @module upstream/stdio
 * The stdio client transport for MCP servers the operator names in the config file (never a
 * command from a request): newline-delimited JSON-RPC on stdin/stdout, stderr to the log, the
 * child killed when the session ends.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { StdioServerConfig } from '../config/config.ts';
import { ProxyError } from '../errors.ts';
import type { JsonRpcMessage } from '../jsonrpc.ts';
import type { Tracing } from '../observability/tracing.ts';
import type { ChildRegistry } from './child-registry.ts';
import { ConnectionSource } from './message-source.ts';
import { sendTraced } from './trace-context.ts';
import type { SendOptions, UpstreamTransport } from './transport.ts';

/** How long a child gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2_000;
/** Variables a child inherits from the proxy; never the proxy's own secrets. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SYSTEMROOT'];

/** Options for one stdio server process. */
export interface StdioOptions {
  /** Configured server name, for logs and errors. */
  readonly name: string;
  readonly server: StdioServerConfig;
  readonly logger: Logger;
  /** Largest single message (one line) accepted from the child. */
  readonly maxLineBytes: number;
  /** Registry of live children (the app's), so a forced exit can kill this one too. */
  readonly children?: ChildRegistry;
  /** Each message sent in a client span, its context in `_meta` (issue 21; off: undefined). */
  readonly tracing?: Tracing | undefined;
}

/** Runs a configured MCP server as a child process and talks to it over stdio. */
export class StdioTransport extends ConnectionSource<StdioOptions> implements UpstreamTransport {
  #child: ChildProcessWithoutNullStreams | undefined;

  async start(): Promise<void> {
    const { server, name, logger } = this.options;
    const env: Record<string, string> = {};
    for (const key of INHERITED_ENV) {
      const value = process.env[key];
      if (value !== undefined) env[key] = value;
    }
    const child = spawn(server.command, server.args, {
      env: { ...env, ...server.env },
      ...(server.cwd ? { cwd: server.cwd } : {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.options.children?.track(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => {
        reject(
          new ProxyError(
            'upstream_unreachable',
            `The configured MCP server "${name}" could not be started.`,
            {
              cause: error,
            },
          ),
        );
      });
    });
    this.#readLines(child.stdout, (line) => this.deliverText(line));
    this.#readLines(
      child.stderr,
      (line) => logger.info({ server: name, stderr: line }, 'stdio server stderr'),
      false,
    );
    child.stdin.on('error', () => {
      // EPIPE after the child died: reported through 'exit' below.
    });
    child.once('exit', (code, signal) => {
      if (!this.closed) {
        const detail = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        this.onerror?.(new ProxyError('upstream_unreachable', `The MCP server "${name}" ${detail}.`));
      }
      void this.close();
    });
  }

  pause(): void {
    this.#child?.stdout.pause();
  }

  resume(): void {
    this.#child?.stdout.resume();
  }

  send(message: JsonRpcMessage, _options: SendOptions = {}): Promise<void> {
    const tracing = this.options.tracing;
    if (tracing !== undefined) return sendTraced(tracing, 'stdio', message, (traced) => this.#send(traced));
    return this.#send(message);
  }

  async #send(message: JsonRpcMessage): Promise<void> {
    const child = this.#child;
    if (!child || this.closed || !child.stdin.writable) {
      throw new ProxyError('upstream_unreachable', `The MCP server "${this.options.name}" is not running.`);
    }
    const stdin = child.stdin;
    // Backpressure both ways round: a send waits for room before writing (concurrent sends
    // must not pile up in stdin's buffer, issue 14 review F1) and until its bytes are taken.
    if (stdin.writableNeedDrain) await drained(stdin);
    if (this.closed || !stdin.writable) {
      throw new ProxyError('upstream_unreachable', `The MCP server "${this.options.name}" is not running.`);
    }
    if (!stdin.write(`${JSON.stringify(message)}\n`)) await drained(stdin);
  }

  /**
   * Ends the child: SIGTERM, SIGKILL after a grace period. The promise settles once the process
   * is really gone, so whoever counts children (the session caps) does not count a slot free
   * while its process still runs.
   */
  protected release(): Promise<void> | void {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin.end();
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    killer.unref();
    child.once('exit', () => clearTimeout(killer));
    return exited;
  }

  /**
   * Splits a stream into lines, each at most `maxLineBytes` bytes. Only each new chunk is
   * scanned for a newline and the pending bytes are counted, not UTF-16 units: scanning the
   * whole pending text on every chunk was quadratic in a long line, and a line of multi-byte
   * characters passed a bound set in bytes (issue 14 review, F5). A longer line ends stdout's
   * session (`upstream_response_too_large`); on stderr it is skipped.
   */
  #readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void, fatal = true): void {
    const limit = this.options.maxLineBytes;
    let parts: Buffer[] = [];
    let held = 0;
    /** True while the rest of an over-long line is being skipped. */
    let skipping = false;
    let stopped = false;
    const tooLong = (): boolean => {
      parts = [];
      held = 0;
      if (fatal) {
        stopped = true;
        this.onerror?.(new ProxyError('upstream_response_too_large'));
        void this.close();
        return true;
      }
      skipping = true;
      return false;
    };
    stream.on('data', (data: Buffer | string) => {
      if (stopped) return;
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      let start = 0;
      let newline = chunk.indexOf(0x0a);
      while (newline !== -1) {
        if (skipping) skipping = false;
        else if (held + newline - start > limit) {
          if (tooLong()) return;
          skipping = false;
        } else {
          parts.push(chunk.subarray(start, newline));
          const line = (parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts))
            .toString('utf8')
            .replace(/\r$/, '');
          parts = [];
          held = 0;
          if (line.trim() !== '') onLine(line);
          if (stopped) return;
        }
        start = newline + 1;
        newline = chunk.indexOf(0x0a, start);
      }
      if (skipping || start >= chunk.length) return;
      held += chunk.length - start;
      if (held > limit) {
        tooLong();
        return;
      }
      // A copy: a view would keep the whole chunk (up to 64 KiB) alive for a few bytes.
      parts.push(start === 0 ? chunk : Buffer.from(chunk.subarray(start)));
    });
  }
}

/** Resolves once `stream` drained or closed (a dead child never drains). */
function drained(stream: NodeJS.WritableStream & { readonly closed?: boolean }): Promise<void> {
  if (stream.closed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
