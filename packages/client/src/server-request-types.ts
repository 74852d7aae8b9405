/**
 * @module server-request-types
 * The MCP types of the requests a server sends the client (spec 2025-06-18, with the fields
 * 2025-11-25 added): sampling (`sampling/createMessage`), elicitation (`elicitation/create`, form
 * and URL modes) and roots (`roots/list`), and the map of their params and results. Type-only,
 * re-exported by types.ts.
 */
import type {
  AudioContent,
  ContentBlock,
  EmptyResult,
  ImageContent,
  Meta,
  RequestParams,
  Result,
  Role,
  TextContent,
  Tool,
} from './types.ts';

/** A tool call the model asks for, in a sampling message (2025-11-25). */
export interface ToolUseContent {
  type: 'tool_use';
  id: string;
  name: string;
  input: { [key: string]: unknown };
  _meta?: Meta;
}

/** The result of a tool call, given back to the model in a sampling message (2025-11-25). */
export interface ToolResultContent {
  type: 'tool_result';
  toolUseId: string;
  content: ContentBlock[];
  structuredContent?: { [key: string]: unknown };
  isError?: boolean;
  _meta?: Meta;
}

/** Content of a sampling message. */
export type SamplingContent = TextContent | ImageContent | AudioContent | ToolUseContent | ToolResultContent;

/** One message of a sampling conversation. */
export interface SamplingMessage {
  role: Role;
  content: SamplingContent | SamplingContent[];
  _meta?: Meta;
}

/** The server's hints for choosing a model. */
export interface ModelPreferences {
  hints?: { name?: string }[];
  costPriority?: number;
  speedPriority?: number;
  intelligencePriority?: number;
}

/** Params of `sampling/createMessage`: the server asks the client's LLM for a completion. */
export interface CreateMessageParams {
  _meta?: RequestParams['_meta'];
  messages: SamplingMessage[];
  modelPreferences?: ModelPreferences;
  systemPrompt?: string;
  includeContext?: 'none' | 'thisServer' | 'allServers';
  temperature?: number;
  maxTokens: number;
  stopSequences?: string[];
  metadata?: object;
  tools?: Tool[];
  toolChoice?: { mode?: 'auto' | 'required' | 'none' };
}

/** Result of `sampling/createMessage`: the model's message. */
export interface CreateMessageResult extends Result {
  role: Role;
  content: SamplingContent | SamplingContent[];
  model: string;
  stopReason?: 'endTurn' | 'stopSequence' | 'maxTokens' | 'toolUse' | (string & {});
}

/** A field of an elicitation form: a string, number, boolean or enum (single or multi-select) schema. */
export interface PrimitiveSchemaDefinition {
  type: 'string' | 'number' | 'integer' | 'boolean' | 'array';
  title?: string;
  description?: string;
  default?: unknown;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  enumNames?: string[];
  oneOf?: { const: string; title: string }[];
  items?: object;
  minItems?: number;
  maxItems?: number;
}

/** Params of `elicitation/create` in form mode: ask the user to fill in a form. */
export interface ElicitFormParams {
  _meta?: RequestParams['_meta'];
  mode?: 'form';
  message: string;
  requestedSchema: {
    $schema?: string;
    type: 'object';
    properties: { [key: string]: PrimitiveSchemaDefinition };
    required?: string[];
  };
}

/** Params of `elicitation/create` in URL mode (2025-11-25): send the user to a URL. */
export interface ElicitUrlParams {
  _meta?: RequestParams['_meta'];
  mode: 'url';
  message: string;
  elicitationId: string;
  url: string;
}

/** Params of `elicitation/create`. */
export type ElicitParams = ElicitFormParams | ElicitUrlParams;

/** Result of `elicitation/create`: what the user did, and what they entered. */
export interface ElicitResult extends Result {
  action: 'accept' | 'decline' | 'cancel';
  content?: { [key: string]: string | number | boolean | string[] };
}

/** A root the client exposes to the server (a directory or other URI). */
export interface Root {
  uri: string;
  name?: string;
  _meta?: Meta;
}

/** Result of `roots/list`. */
export interface ListRootsResult extends Result {
  roots: Root[];
}

/** Every server-to-client request the client can answer: its params and its result. */
export interface ServerRequestMap {
  'sampling/createMessage': { params: CreateMessageParams; result: CreateMessageResult };
  'elicitation/create': { params: ElicitParams; result: ElicitResult };
  'roots/list': { params: RequestParams | undefined; result: ListRootsResult };
  ping: { params: RequestParams | undefined; result: EmptyResult };
}

/** A server-to-client request method. */
export type ServerRequestMethod = keyof ServerRequestMap;
