/**
 * @module virtual/tool-search
 * Tool search mode of a virtual server (issue 20, opt-in with `toolSearch: true`): for hosts that
 * cap how many tools they take, the client sees two tools instead of the merged list,
 * `search_tools` (the members' tools ranked by how well their name and description match a
 * query) and `call_tool` (calls one of them by the name a search gave).
 */
import type { JsonObject } from '../jsonrpc.ts';

/** The name of the search tool. */
export const SEARCH_TOOL = 'search_tools';
/** The name of the calling tool. */
export const CALL_TOOL = 'call_tool';
/** At most this many tools in one search answer. */
export const MAX_SEARCH_RESULTS = 50;
const DEFAULT_SEARCH_RESULTS = 10;
/** Only this much of a query is read, and at most this many distinct words of it. */
export const MAX_QUERY_CHARS = 256;
const MAX_QUERY_WORDS = 32;
/** Only this much of a tool's name and description is ranked: the cost stays linear and small. */
const MAX_RANKED_CHARS = 1024;
/** A found tool's description is shown up to this length. */
const MAX_SHOWN_DESCRIPTION = 1024;
/** A found tool's inputSchema is shown when its JSON is at most this long (else a bare object). */
const MAX_SHOWN_SCHEMA = 4096;
/** One search answer's text stays under this many characters: the worst ranked are left out. */
export const MAX_SEARCH_ANSWER_CHARS = 131_072;

/** The two tools a client of a virtual server in search mode is listed. */
export const SEARCH_MODE_TOOLS: readonly JsonObject[] = [
  {
    name: SEARCH_TOOL,
    description:
      'Finds tools of this server by what they do: ranks every tool by how well its name and description match the query. Call one with call_tool.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'Words describing the task, e.g. "create github issue".' },
        limit: {
          type: 'integer',
          minimum: 1,
          maximum: MAX_SEARCH_RESULTS,
          description: `How many tools to return (default ${DEFAULT_SEARCH_RESULTS}).`,
        },
      },
      required: ['query'],
    },
  },
  {
    name: CALL_TOOL,
    description: 'Calls a tool that search_tools returned, by its name, with its arguments.',
    inputSchema: {
      type: 'object',
      properties: {
        name: { type: 'string', description: 'The tool name search_tools gave.' },
        arguments: { type: 'object', description: "The tool's arguments, as its inputSchema describes." },
      },
      required: ['name'],
    },
  },
];

/**
 * The searches one request (a batch) may run: one. A batch of many `search_tools` calls would
 * each read up to 20 list pages, one after the other, for a single HTTP request.
 */
export class SearchBudget {
  #left = 1;

  /** Whether a search may run now (it is counted). */
  take(): boolean {
    if (this.#left === 0) return false;
    this.#left--;
    return true;
  }
}

/** The words of a text, lowercased: `create_issue` and "Create an issue" share `create`, `issue`. */
function words(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
}

/**
 * The tools that match `query`, best first, at most `limit`: a query word that is a word of the
 * name counts most, one found inside the name less, one in the description least. Ties keep
 * name order. Tools that match no word are left out.
 */
export function rankTools(tools: readonly JsonObject[], query: string, limit: unknown): JsonObject[] {
  // Bounded so a hostile query or member text cannot block the event loop (words x text).
  const terms = [...new Set(words(query.slice(0, MAX_QUERY_CHARS)))].slice(0, MAX_QUERY_WORDS);
  const count =
    typeof limit === 'number' && Number.isInteger(limit)
      ? Math.min(MAX_SEARCH_RESULTS, Math.max(1, limit))
      : DEFAULT_SEARCH_RESULTS;
  const scored: Array<{ tool: JsonObject; score: number; name: string }> = [];
  for (const tool of tools) {
    const name = String(tool.name);
    const lowerName = name.slice(0, MAX_RANKED_CHARS).toLowerCase();
    const nameWords = new Set(words(lowerName));
    const description =
      typeof tool.description === 'string' ? tool.description.slice(0, MAX_RANKED_CHARS).toLowerCase() : '';
    let score = 0;
    for (const term of terms) {
      if (nameWords.has(term)) score += 5;
      else if (lowerName.includes(term)) score += 3;
      if (description.includes(term)) score += 1;
    }
    if (score > 0) scored.push({ tool, score, name });
  }
  scored.sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return scored.slice(0, count).map(({ tool }) => shown(tool));
}

/**
 * A found tool as a search answer shows it: a member's huge description is cut and a huge schema
 * replaced by a bare object schema, so 50 results stay a small answer (the member's own list
 * still has them whole).
 */
function shown(tool: JsonObject): JsonObject {
  const description =
    typeof tool.description === 'string' && tool.description.length > MAX_SHOWN_DESCRIPTION
      ? `${tool.description.slice(0, MAX_SHOWN_DESCRIPTION)}…`
      : tool.description;
  let inputSchema = tool.inputSchema;
  if (inputSchema !== undefined && (JSON.stringify(inputSchema)?.length ?? 0) > MAX_SHOWN_SCHEMA)
    inputSchema = { type: 'object' };
  return {
    name: tool.name,
    ...(description === undefined ? {} : { description }),
    ...(inputSchema === undefined ? {} : { inputSchema }),
  };
}

/** The search answer's text: the found tools, best first, the worst left out past the size cap. */
export function searchAnswerText(found: readonly JsonObject[]): string {
  const kept: string[] = [];
  let size = '{"tools":[]}'.length;
  for (const tool of found) {
    const text = JSON.stringify(tool);
    if (size + text.length + 1 > MAX_SEARCH_ANSWER_CHARS) break;
    kept.push(text);
    size += text.length + 1;
  }
  return `{"tools":[${kept.join(',')}]}`;
}
