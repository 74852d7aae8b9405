/**
 * @module credentials/callback-refused
 * The error of a refused OAuth callback (credentials/broker.ts), in a module of its own so the
 * callback's route can tell it apart without loading the broker before it runs (issue #16).
 */
import type { ProxyError } from '../errors.ts';

/** A refused callback: the error, and whom the page may tell (when the sign-in was known). */
export class CallbackRefused extends Error {
  readonly error: ProxyError;
  readonly openerOrigin: string | undefined;
  constructor(error: ProxyError, openerOrigin: string | undefined) {
    super(error.message, { cause: error });
    this.name = 'CallbackRefused';
    this.error = error;
    this.openerOrigin = openerOrigin;
  }
}
