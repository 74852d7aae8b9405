/**
 * @module http/relay-answer
 * The owner sends a relayed answer back in parts (issue 19): every answer, a JSON one too, is cut
 * into parts of at most `partBytes`, each published only when the exchange's credit allows
 * (http/relay-credit.ts), one at a time. Reading the answer stops while a couple of parts wait,
 * so the owner's own stream writer feels the relaying side's pace.
 */
import type { ExchangeCredit } from './relay-credit.ts';
import { answerHeaders, type InjectedAnswer, type PartMessage, type Unnumbered } from './relay-wire.ts';

/** Sends one part and the bytes beside it. */
export type SendPart = (part: Unnumbered<PartMessage>, data: Buffer | undefined) => Promise<void>;

/**
 * Streams `answer` as parts of exchange `x`; resolves once its end is sent and acknowledged (or
 * no longer waited for). The first part waits for the current tick's writes: a small JSON answer
 * (head, body and end written at once) travels as one part.
 */
export function streamAnswer(
  answer: InjectedAnswer,
  x: string,
  send: SendPart,
  signal: AbortSignal,
  credit: ExchangeCredit,
  partBytes: number,
): Promise<void> {
  const stream = answer.stream();
  return new Promise<void>((resolve, reject) => {
    // Given up (a cancel, the relay closing): whatever the route does with its response, the
    // answer is not read any further.
    const onAbort = () => {
      stream.destroy();
      reject(new Error('the relayed exchange was given up'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    let head: PartMessage['head'] = { status: answer.statusCode, headers: answerHeaders(answer.headers) };
    let queue: Buffer[] = [];
    let queued = 0;
    let ended = false;
    let sending = false;
    let ready = false;
    /** The next part's bytes, at most `partBytes`, taken off the queue. */
    const takePart = (): Buffer | undefined => {
      if (queued === 0) return undefined;
      const all = queue.length === 1 ? (queue[0] as Buffer) : Buffer.concat(queue);
      const data = all.subarray(0, partBytes);
      const rest = all.subarray(data.length);
      queue = rest.length === 0 ? [] : [rest];
      queued = rest.length;
      return data;
    };
    const sendNext = async (): Promise<boolean> => {
      const data = takePart();
      const last = ended && queued === 0;
      const part: Unnumbered<PartMessage> = {
        k: 'part',
        x,
        ...(head === undefined ? {} : { head }),
        ...(last ? { end: true } : {}),
      };
      head = undefined;
      if (queued < 2 * partBytes) stream.resume();
      if (data !== undefined) await credit.take(data.length);
      await send(part, data);
      return last;
    };
    const pump = () => {
      if (sending || !ready || (head === undefined && queued === 0 && !ended)) return;
      sending = true;
      sendNext().then(
        (last) => {
          sending = false;
          if (!last) {
            pump();
            return;
          }
          signal.removeEventListener('abort', onAbort);
          credit.settle().then(resolve, resolve);
        },
        (error: unknown) => {
          stream.destroy();
          reject(error);
        },
      );
    };
    stream.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      queued += chunk.length;
      if (queued >= 2 * partBytes) stream.pause();
      pump();
    });
    stream.once('end', () => {
      ended = true;
      pump();
    });
    stream.once('error', reject);
    setImmediate(() => {
      ready = true;
      pump();
    });
  });
}
