/**
 * @module identity/audit-sink
 * Where the audit trail writes (`AUDIT_LOG`): stdout or a file, asynchronously and buffered, so
 * a line never blocks the event loop on a disk write. The buffer is bounded: while a slow disk
 * holds more than `maxBufferedBytes`, lines are dropped and counted, and the count is written as
 * a line of its own once writing resumes — memory never grows without bound.
 */
import { openSync } from 'node:fs';
import pino from 'pino';
import { ConfigError } from '../config/sources.ts';
import type { AuditDestination } from './audit-trail.ts';

/** Bytes of audit lines held for a slow disk before lines are dropped. */
export const AUDIT_BUFFER_BYTES = 8 * 1_048_576;

/** An open audit sink. */
export interface AuditSink extends AuditDestination {
  /** Flushes what is buffered and closes the file. */
  close(): Promise<void>;
}

/**
 * Opens the sink `setting` names (`stdout` or a path; `off` is never passed here).
 * Throws when the file cannot be opened for appending.
 * @param warn told, at most once a minute, that lines were dropped or the file failed.
 */
export function openAuditSink(
  setting: string,
  warn: (message: string) => void,
  maxBufferedBytes = AUDIT_BUFFER_BYTES,
): AuditSink {
  let fd = 1;
  if (setting !== 'stdout') {
    try {
      // Opened now, once: a path that cannot be written fails the start, not a later request.
      fd = openSync(setting, 'a', 0o600);
    } catch (error) {
      throw new ConfigError(`AUDIT_LOG: cannot open ${setting} for appending (${(error as Error).message})`);
    }
  }
  const stream = pino.destination({
    dest: fd,
    append: true,
    sync: false,
    // Written as soon as no write is in flight; lines arriving meanwhile go out together.
    minLength: 0,
    maxLength: maxBufferedBytes,
  }) as ReturnType<typeof pino.destination> & NodeJS.EventEmitter;
  let dropped = 0;
  let lastWarning = 0;
  const throttled = (message: string) => {
    const now = Date.now();
    if (now - lastWarning < 60_000) return;
    lastWarning = now;
    warn(message);
  };
  stream.on('drop', () => {
    dropped++;
    throttled('audit log: the destination is too slow, lines are being dropped');
  });
  // A failed open or write must not end the process: the trail reports it and goes on.
  stream.on('error', (error: Error) => throttled(`audit log: cannot write (${error.message})`));
  /** Says how many lines were dropped since it last said so. */
  const reportDrops = () => {
    if (dropped === 0) return;
    const count = dropped;
    dropped = 0;
    // The count itself is never dropped: one short line past the bound.
    const bounded = stream as unknown as { maxLength: number };
    bounded.maxLength = 0;
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), dropped: count })}\n`);
    bounded.maxLength = maxBufferedBytes;
  };
  return {
    write(line: string) {
      const before = dropped;
      stream.write(line);
      // Once a line finds room again, the count of those that did not follows it.
      if (before > 0 && dropped === before) reportDrops();
    },
    close() {
      reportDrops();
      return new Promise<void>((resolve) => {
        if (setting === 'stdout') {
          stream.flush(() => resolve());
          return;
        }
        stream.once('close', () => resolve());
        stream.once('error', () => resolve());
        stream.end();
      });
    },
  };
}
