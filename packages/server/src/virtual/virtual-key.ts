/**
 * @module virtual/virtual-key
 * The target key of what is opened to a virtual server (issue 20): a request, a `/ws` socket, a
 * held session. It names what the holding was opened AS, so that a reload judges it as that
 * (review10 GRANTS-3): a socket opened to the configured server `v` (`server:v`) is never taken
 * for one to a virtual server a reload named `v`, nor the other way round.
 */

const PREFIX = 'virtual:';

/** The key of what is opened to the virtual server `name`. */
export function virtualKey(name: string): string {
  return `${PREFIX}${name}`;
}

/** The virtual server a target key names, if it is one's ({@link virtualKey}). */
export function virtualNameOf(targetKey: string): string | undefined {
  return targetKey.startsWith(PREFIX) ? targetKey.slice(PREFIX.length) : undefined;
}
