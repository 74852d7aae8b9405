/**
 * @module virtual/catalogs
 * What a virtual server declares and the lists it merges from its members (tools, prompts,
 * resources, resource templates): each list's method, result field, the member capability that
 * says a member has it, and the field a client addresses an entry by.
 */

/**
 * What a virtual server declares: what it routes (whether a member has each is only known once it
 * answered; an empty list costs nothing). List changes, resource updates and log messages reach
 * a client on its GET stream (client-streams.ts); a client without one simply gets none.
 */
export const VIRTUAL_CAPABILITIES = {
  tools: { listChanged: true },
  prompts: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  completions: {},
  logging: {},
} as const;

/**
 * What a virtual server declares to a 2026-07-28 client: the same lists, without what only a
 * 2025 client's GET stream carries (that era has no logging level to set, and listens itself).
 */
export const MODERN_CAPABILITIES = { tools: {}, prompts: {}, resources: {}, completions: {} } as const;

/** A list the virtual server merges from its members: its method, result field and capability. */
export interface Catalog {
  readonly method: 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';
  readonly field: 'tools' | 'prompts' | 'resources' | 'resourceTemplates';
  /** The member capability that says it has such a list. */
  readonly capability: 'tools' | 'prompts' | 'resources';
  /** The entry's field the client addresses it by: a name is prefixed, a URI mapped. */
  readonly key: 'name' | 'uri' | 'uriTemplate';
  /** What an entry is called in an unknown-name answer. */
  readonly noun: 'tool' | 'prompt' | 'resource';
}

export const TOOLS: Catalog = {
  method: 'tools/list',
  field: 'tools',
  capability: 'tools',
  key: 'name',
  noun: 'tool',
};
export const PROMPTS: Catalog = {
  method: 'prompts/list',
  field: 'prompts',
  capability: 'prompts',
  key: 'name',
  noun: 'prompt',
};
export const RESOURCES: Catalog = {
  method: 'resources/list',
  field: 'resources',
  capability: 'resources',
  key: 'uri',
  noun: 'resource',
};
export const TEMPLATES: Catalog = {
  method: 'resources/templates/list',
  field: 'resourceTemplates',
  capability: 'resources',
  key: 'uriTemplate',
  noun: 'resource',
};
