/**
 * @module types
 * The MCP types the client speaks, written by hand from the MCP specification (revision
 * 2025-06-18, plus optional fields later revisions added), so the package has no dependency and
 * its `.d.ts` stands alone. Type-only: this module emits no JavaScript. A type test checks these
 * against `@modelcontextprotocol/sdk`'s generated spec types so drift is caught at compile time.
 *
 * Results are open objects (`[key: string]: unknown`) exactly as in the spec, so fields added by
 * newer servers are kept rather than rejected.
 */

export type * from './server-request-types.ts';

/** Open metadata object (`_meta`) the spec allows on most messages. */
export type Meta = { [key: string]: unknown };

/** A JSON-RPC request id. */
export type RequestId = string | number;

/** Opaque pagination cursor. */
export type Cursor = string;

/** Progress token a request may carry in `_meta.progressToken`. */
export type ProgressToken = string | number;

/** Common request params: `_meta` with an optional progress token. */
export interface RequestParams {
  _meta?: { progressToken?: ProgressToken; [key: string]: unknown };
  [key: string]: unknown;
}

/** Every result: an open object with optional `_meta`. */
export interface Result {
  _meta?: Meta;
  [key: string]: unknown;
}

/** A result that carries nothing (ping, subscribe, setLevel). */
export type EmptyResult = Result;

/** A JSON-RPC request message. */
export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: RequestId;
  method: string;
  params?: { [key: string]: unknown };
}

/** A JSON-RPC notification message (no id, no response). */
export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: { [key: string]: unknown };
}

/** The error object of a JSON-RPC error response. */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** A JSON-RPC success response. */
export interface JsonRpcResultResponse {
  jsonrpc: '2.0';
  id: RequestId;
  result: Result;
}

/** A JSON-RPC error response. */
export interface JsonRpcErrorResponse {
  jsonrpc: '2.0';
  id?: RequestId | null;
  error: JsonRpcErrorObject;
}

/** Any JSON-RPC response. */
export type JsonRpcResponse = JsonRpcResultResponse | JsonRpcErrorResponse;

// ——— Lifecycle ———

/** Name and version of a client or server implementation. */
export interface Implementation {
  name: string;
  version: string;
  title?: string;
  description?: string;
  websiteUrl?: string;
  icons?: Icon[];
}

/** An icon a server may attach to itself, a tool, resource or prompt. */
export interface Icon {
  src: string;
  mimeType?: string;
  sizes?: string[];
  theme?: 'light' | 'dark';
}

/**
 * What the client supports. The client fills in `sampling`, `elicitation` and `roots` for the
 * request handlers you register (`setRequestHandler`); what you pass here is merged over that.
 */
export interface ClientCapabilities {
  experimental?: { [key: string]: object };
  roots?: { listChanged?: boolean };
  sampling?: object;
  elicitation?: object;
  tasks?: object;
  extensions?: { [key: string]: object };
}

/** What the server supports. */
export interface ServerCapabilities {
  experimental?: { [key: string]: object };
  logging?: object;
  completions?: object;
  prompts?: { listChanged?: boolean };
  resources?: { subscribe?: boolean; listChanged?: boolean };
  tools?: { listChanged?: boolean };
  tasks?: object;
  extensions?: { [key: string]: object };
}

/** Params of `initialize`. */
export interface InitializeParams extends RequestParams {
  protocolVersion: string;
  capabilities: ClientCapabilities;
  clientInfo: Implementation;
}

/** Result of `initialize`. */
export interface InitializeResult extends Result {
  protocolVersion: string;
  capabilities: ServerCapabilities;
  serverInfo: Implementation;
  instructions?: string;
}

// ——— Shared content ———

/** Who a piece of content is for. */
export type Role = 'user' | 'assistant';

/** Hints about how content should be used or shown. */
export interface Annotations {
  audience?: Role[];
  priority?: number;
  lastModified?: string;
}

/** Text content. */
export interface TextContent {
  type: 'text';
  text: string;
  annotations?: Annotations;
  _meta?: Meta;
}

/** Base64 image content. */
export interface ImageContent {
  type: 'image';
  data: string;
  mimeType: string;
  annotations?: Annotations;
  _meta?: Meta;
}

/** Base64 audio content. */
export interface AudioContent {
  type: 'audio';
  data: string;
  mimeType: string;
  annotations?: Annotations;
  _meta?: Meta;
}

/** A link to a resource the client may read. */
export interface ResourceLink extends Resource {
  type: 'resource_link';
}

/** A resource embedded in a result. */
export interface EmbeddedResource {
  type: 'resource';
  resource: TextResourceContents | BlobResourceContents;
  annotations?: Annotations;
  _meta?: Meta;
}

/** Any content block of a tool result or prompt message. */
export type ContentBlock = TextContent | ImageContent | AudioContent | ResourceLink | EmbeddedResource;

/** Params of every list method. */
export interface PaginatedParams extends RequestParams {
  cursor?: Cursor;
}

/** Result of every list method: a page and maybe the cursor of the next one. */
export interface PaginatedResult extends Result {
  nextCursor?: Cursor;
}

// ——— Tools ———

/** A JSON Schema object describing tool input or output. */
export interface ToolSchema {
  $schema?: string;
  type: 'object';
  properties?: { [key: string]: object };
  required?: string[];
  [key: string]: unknown;
}

/** Behaviour hints of a tool (untrusted unless the server is). */
export interface ToolAnnotations {
  title?: string;
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

/** A tool the server offers. */
export interface Tool {
  name: string;
  title?: string;
  description?: string;
  inputSchema: ToolSchema;
  outputSchema?: ToolSchema;
  annotations?: ToolAnnotations;
  icons?: Icon[];
  _meta?: Meta;
}

/** Result of `tools/list`. */
export interface ListToolsResult extends PaginatedResult {
  tools: Tool[];
}

/** Params of `tools/call`. */
export interface CallToolParams extends RequestParams {
  name: string;
  arguments?: { [key: string]: unknown };
}

/** Result of `tools/call`. A tool's own failure is `isError: true`, not a thrown error. */
export interface CallToolResult extends Result {
  content: ContentBlock[];
  structuredContent?: { [key: string]: unknown };
  isError?: boolean;
}

// ——— Resources ———

/** A resource the server offers. */
export interface Resource {
  uri: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  annotations?: Annotations;
  size?: number;
  icons?: Icon[];
  _meta?: Meta;
}

/** A parameterised resource (RFC 6570 URI template). */
export interface ResourceTemplate {
  uriTemplate: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  annotations?: Annotations;
  icons?: Icon[];
  _meta?: Meta;
}

/** Contents of a resource, text or binary. */
export interface ResourceContents {
  uri: string;
  mimeType?: string;
  _meta?: Meta;
}

/** Text contents of a resource. */
export interface TextResourceContents extends ResourceContents {
  text: string;
}

/** Base64 contents of a binary resource. */
export interface BlobResourceContents extends ResourceContents {
  blob: string;
}

/** Result of `resources/list`. */
export interface ListResourcesResult extends PaginatedResult {
  resources: Resource[];
}

/** Result of `resources/templates/list`. */
export interface ListResourceTemplatesResult extends PaginatedResult {
  resourceTemplates: ResourceTemplate[];
}

/** Params of `resources/read`, `resources/subscribe` and `resources/unsubscribe`. */
export interface ResourceParams extends RequestParams {
  uri: string;
}

/** Result of `resources/read`. */
export interface ReadResourceResult extends Result {
  contents: (TextResourceContents | BlobResourceContents)[];
}

// ——— Prompts ———

/** An argument a prompt accepts. */
export interface PromptArgument {
  name: string;
  title?: string;
  description?: string;
  required?: boolean;
}

/** A prompt the server offers. */
export interface Prompt {
  name: string;
  title?: string;
  description?: string;
  arguments?: PromptArgument[];
  icons?: Icon[];
  _meta?: Meta;
}

/** One message of a prompt. */
export interface PromptMessage {
  role: Role;
  content: ContentBlock;
}

/** Result of `prompts/list`. */
export interface ListPromptsResult extends PaginatedResult {
  prompts: Prompt[];
}

/** Params of `prompts/get`. */
export interface GetPromptParams extends RequestParams {
  name: string;
  arguments?: { [key: string]: string };
}

/** Result of `prompts/get`. */
export interface GetPromptResult extends Result {
  description?: string;
  messages: PromptMessage[];
}

// ——— Completion and logging ———

/** Reference to a prompt, for completion. */
export interface PromptReference {
  type: 'ref/prompt';
  name: string;
  title?: string;
}

/** Reference to a resource template, for completion. */
export interface ResourceTemplateReference {
  type: 'ref/resource';
  uri: string;
}

/** The argument being completed. */
export interface CompleteArgument {
  name: string;
  value: string;
}

/** Params of `completion/complete`. */
export interface CompleteParams extends RequestParams {
  ref: PromptReference | ResourceTemplateReference;
  argument: CompleteArgument;
  context?: { arguments?: { [key: string]: string } };
}

/** Result of `completion/complete`. */
export interface CompleteResult extends Result {
  completion: { values: string[]; total?: number; hasMore?: boolean };
}

/** Syslog severities (RFC 5424), least to most severe. */
export type LoggingLevel =
  | 'debug'
  | 'info'
  | 'notice'
  | 'warning'
  | 'error'
  | 'critical'
  | 'alert'
  | 'emergency';

/** Params of `logging/setLevel`. */
export interface SetLevelParams extends RequestParams {
  level: LoggingLevel;
}

// ——— Method maps ———

/**
 * Every client-to-server request: its params and its result. Drives the typing of
 * {@link MCPProxyClient.request}.
 */
export interface RequestMap {
  initialize: { params: InitializeParams; result: InitializeResult };
  ping: { params: RequestParams | undefined; result: EmptyResult };
  'tools/list': { params: PaginatedParams | undefined; result: ListToolsResult };
  'tools/call': { params: CallToolParams; result: CallToolResult };
  'resources/list': { params: PaginatedParams | undefined; result: ListResourcesResult };
  'resources/templates/list': { params: PaginatedParams | undefined; result: ListResourceTemplatesResult };
  'resources/read': { params: ResourceParams; result: ReadResourceResult };
  'resources/subscribe': { params: ResourceParams; result: EmptyResult };
  'resources/unsubscribe': { params: ResourceParams; result: EmptyResult };
  'prompts/list': { params: PaginatedParams | undefined; result: ListPromptsResult };
  'prompts/get': { params: GetPromptParams; result: GetPromptResult };
  'completion/complete': { params: CompleteParams; result: CompleteResult };
  'logging/setLevel': { params: SetLevelParams; result: EmptyResult };
}

/** A method name the spec defines for client-to-server requests. */
export type RequestMethod = keyof RequestMap;

/** Params for `M`: the spec's params for known methods, any object otherwise. */
export type ParamsOf<M extends string> = M extends RequestMethod
  ? RequestMap[M]['params']
  : { [key: string]: unknown } | undefined;

/** Result for `M`: the spec's result for known methods, an open {@link Result} otherwise. */
export type ResultOf<M extends string> = M extends RequestMethod ? RequestMap[M]['result'] : Result;

/** Every server-to-client notification and its params. */
export interface NotificationMap {
  'notifications/cancelled': { requestId?: RequestId; reason?: string; _meta?: Meta };
  'notifications/progress': {
    progressToken: ProgressToken;
    progress: number;
    total?: number;
    message?: string;
    _meta?: Meta;
  };
  'notifications/message': { level: LoggingLevel; logger?: string; data: unknown; _meta?: Meta };
  'notifications/resources/updated': { uri: string; _meta?: Meta };
  'notifications/resources/list_changed': { _meta?: Meta } | undefined;
  'notifications/tools/list_changed': { _meta?: Meta } | undefined;
  'notifications/prompts/list_changed': { _meta?: Meta } | undefined;
  'notifications/elicitation/complete': { elicitationId: string; _meta?: Meta };
}

/** A server notification method the spec defines. */
export type NotificationMethod = keyof NotificationMap;

/** A server notification, discriminated by `method` so `switch (n.method)` narrows `params`. */
export type ServerNotification = {
  [M in NotificationMethod]: { method: M; params: NotificationMap[M] };
}[NotificationMethod];

/** Any JSON-RPC message. */
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;
