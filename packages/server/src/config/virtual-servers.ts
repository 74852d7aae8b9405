/**
 * @module config/virtual-servers
 * The schema of `virtualServers` (issue 20: several configured servers behind one endpoint) and
 * the checks that need the rest of the configuration: members exist, names do not clash.
 */
import { z } from 'zod';
import { serverName } from './schemas.ts';

/** One virtual server: the configured servers it merges, and how their tool names are told apart. */
export const virtualServerSchema = z.strictObject({
  /** Names of configured `servers` (not other virtual servers), in listing order. */
  servers: z.array(serverName).min(1, 'a virtual server needs at least one member server'),
  /**
   * Between a member's name and its tool's name (`github__create_issue`). Characters MCP allows
   * in tool names only, so prefixed names stay valid tool names.
   */
  separator: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,8}$/, 'the separator uses 1-8 of the characters A-Z a-z 0-9 _ . -')
    .default('__'),
  /**
   * How a member's tool and prompt names are shown: `member` prefixes them with the member's name
   * and the separator; `none` shows them as the member does (a name two members list is hidden).
   */
  prefix: z.enum(['member', 'none']).default('member'),
  /** Only these tools (their prefixed names) are listed and callable; others look unknown. */
  tools: z.array(z.string().min(1)).optional(),
  /** Tool search mode: the client is listed `search_tools` and `call_tool` instead of every tool. */
  toolSearch: z.boolean().default(false),
  /** How long a member may take to give its list page before it is left out of that page. */
  listTimeoutMs: z.number().int().positive().default(5_000),
});

/** A virtual server as configured (validated). */
export interface VirtualServerSettings {
  readonly servers: readonly string[];
  readonly separator: string;
  /** Default (and when absent) `member`. */
  readonly prefix?: 'member' | 'none' | undefined;
  readonly tools?: readonly string[] | undefined;
  readonly toolSearch: boolean;
  readonly listTimeoutMs: number;
}

/**
 * What is wrong with the virtual servers given the configured ones, as `[key, message]`, or
 * undefined. Prefixed tool names must route to exactly one member, so no member's name may
 * begin with another's name and the separator, counting its own separator (`a` and `a__b` would
 * both claim `a__b__c`; `a` and `a_` both claim `a___x`):
 * with that, two members can never list the same prefixed name.
 */
export function virtualServerProblem(
  virtualServers: Readonly<Record<string, VirtualServerSettings>>,
  servers: Readonly<Record<string, unknown>>,
): [key: string, message: string] | undefined {
  for (const [name, settings] of Object.entries(virtualServers)) {
    const key = `virtualServers.${name}`;
    if (Object.hasOwn(servers, name))
      return [key, `"${name}" is both a server and a virtual server: pick another name`];
    for (const member of settings.servers) {
      if (Object.hasOwn(virtualServers, member))
        return [`${key}.servers`, `"${member}" is a virtual server: members must be configured servers`];
      if (!Object.hasOwn(servers, member)) return [`${key}.servers`, `no server named "${member}"`];
    }
    if (new Set(settings.servers).size !== settings.servers.length)
      return [`${key}.servers`, 'a server is listed twice'];
    // Unprefixed names are the members' own: no prefix can collide (a name two members list
    // is refused when listed, virtual/name-claims.ts).
    if (settings.prefix === 'none') continue;
    for (const member of settings.servers) {
      // Also `a` and `a_` with `__`: a's tool `_x` and a_'s tool `x` are both `a___x`.
      const head = member + settings.separator;
      const clash = settings.servers.find(
        (other) => other !== member && (other + settings.separator).startsWith(head),
      );
      if (clash !== undefined)
        return [
          `${key}.servers`,
          `tool names of "${member}" and "${clash}" could collide ("${member}${settings.separator}" begins "${clash}${settings.separator}"): rename one or pick another separator`,
        ];
    }
  }
  return undefined;
}
