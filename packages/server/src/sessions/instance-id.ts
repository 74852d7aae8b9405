/**
 * @module sessions/instance-id
 * The id an instance goes by in the shared store, in `requestState` handles and on the status
 * page: 16 base64url characters, random per process. Its own module so that an instance with
 * no store to share (start-up memory, issue #16) names itself without loading the ownership
 * registry.
 */
import { randomBytes } from 'node:crypto';

/** A fresh instance id (visible ASCII without `.`). */
export function newInstanceId(): string {
  return randomBytes(12).toString('base64url');
}
