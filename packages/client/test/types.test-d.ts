/**
 * Type-level tests of the public surface, checked by `tsc --noEmit` (npm run typecheck), never
 * run. `Expect<Equal<…>>` fails compilation when a type is wrong; `@ts-expect-error` fails it
 * when something that must not compile does.
 */
import type * as Sdk from '@modelcontextprotocol/sdk/spec.types.js';
import MCPProxyClient, {
  type CallToolResult,
  type CompleteResult,
  type CreateMessageParams,
  type CreateMessageResult,
  type ElicitParams,
  type ElicitResult,
  type EmptyResult,
  type ErrorCode,
  type GetPromptResult,
  type InitializeResult,
  type ListPromptsResult,
  type ListResourcesResult,
  type ListResourceTemplatesResult,
  type ListRootsResult,
  type ListToolsResult,
  type LoggingLevel,
  type MCPProxyClientOptions,
  MCPProxyError,
  McpError,
  type Prompt,
  ProxyAuthError,
  type ReadResourceResult,
  type RequestId,
  type Resource,
  type ResourceTemplate,
  type Result,
  type ServerNotification,
  type SignInError,
  type SignInResult,
  TargetForbiddenError,
  type Tool,
  type UpstreamAuthError,
  UpstreamAuthRequiredError,
  UpstreamError,
} from '../src/index.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type Extends<A, B> = [A] extends [B] ? true : false;
type Awaited2<T> = T extends Promise<infer U> ? U : never;

declare const client: MCPProxyClient;

// ——— Every method's result type ———
export type Results = [
  Expect<Equal<ReturnType<typeof client.initialize>, Promise<InitializeResult>>>,
  Expect<Equal<ReturnType<typeof client.listTools>, Promise<ListToolsResult>>>,
  Expect<Equal<ReturnType<typeof client.callTool>, Promise<CallToolResult>>>,
  Expect<Equal<ReturnType<typeof client.listResources>, Promise<ListResourcesResult>>>,
  Expect<Equal<ReturnType<typeof client.listResourceTemplates>, Promise<ListResourceTemplatesResult>>>,
  Expect<Equal<ReturnType<typeof client.readResource>, Promise<ReadResourceResult>>>,
  Expect<Equal<ReturnType<typeof client.subscribeResource>, Promise<EmptyResult>>>,
  Expect<Equal<ReturnType<typeof client.unsubscribeResource>, Promise<EmptyResult>>>,
  Expect<Equal<ReturnType<typeof client.listPrompts>, Promise<ListPromptsResult>>>,
  Expect<Equal<ReturnType<typeof client.getPrompt>, Promise<GetPromptResult>>>,
  Expect<Equal<ReturnType<typeof client.complete>, Promise<CompleteResult>>>,
  Expect<Equal<ReturnType<typeof client.ping>, Promise<EmptyResult>>>,
  Expect<Equal<ReturnType<typeof client.setLoggingLevel>, Promise<EmptyResult>>>,
  Expect<Equal<ReturnType<typeof client.close>, Promise<void>>>,
];

// ——— request(): typed by method, open for the rest ———
const listed = client.request('tools/list');
const called = client.request('tools/call', { name: 'echo', arguments: { message: 'hi' } });
const custom = client.request('vendor/anything', { free: 'form' });
export type RequestResults = [
  Expect<Equal<typeof listed, Promise<ListToolsResult>>>,
  Expect<Equal<typeof called, Promise<CallToolResult>>>,
  Expect<Equal<typeof custom, Promise<Result>>>,
];
// @ts-expect-error tools/call requires params
void client.request('tools/call');
// @ts-expect-error tools/call params need a name
void client.request('tools/call', { arguments: {} });
// @ts-expect-error callTool's result is not a ListToolsResult
export const wrong: Promise<ListToolsResult> = client.callTool('echo', {});
// @ts-expect-error getPrompt arguments are strings
void client.getPrompt('p', { n: 1 });
// @ts-expect-error not a logging level
void client.setLoggingLevel('verbose');
// @ts-expect-error a completion ref needs a known type
void client.complete({ type: 'ref/tool', name: 'x' }, { name: 'a', value: 'b' });

// ——— Per-call options: signal, timeout, cursor ———
void client.callTool('echo', {}, { signal: AbortSignal.timeout(1000), timeoutMs: 500 });
void client.listTools({ cursor: 'next', signal: new AbortController().signal });
void client.complete(
  { type: 'ref/prompt', name: 'p' },
  { name: 'a', value: 'b' },
  { context: { arguments: {} } },
);
// @ts-expect-error a signal is an AbortSignal
void client.ping({ signal: 'stop' });

// ——— iterate() yields the item type of each listing ———
type Item<K extends 'tools' | 'resources' | 'resourceTemplates' | 'prompts'> =
  ReturnType<typeof client.iterate<K>> extends AsyncGenerator<infer T, void> ? T : never;
export type Items = [
  Expect<Equal<Item<'tools'>, Tool>>,
  Expect<Equal<Item<'resources'>, Resource>>,
  Expect<Equal<Item<'resourceTemplates'>, ResourceTemplate>>,
  Expect<Equal<Item<'prompts'>, Prompt>>,
];
// @ts-expect-error not a listing
void client.iterate('roots');

// ——— Options: exactly one of mcpServerUrl and server ———
const base = { proxyUrl: 'http://p', proxyToken: 't' };
export const byUrl: MCPProxyClientOptions = { ...base, mcpServerUrl: 'http://m/mcp', transport: 'http' };
export const byName: MCPProxyClientOptions = { ...base, server: 'github' };
// @ts-expect-error both targets
export const both: MCPProxyClientOptions = { ...base, mcpServerUrl: 'http://m/mcp', server: 'github' };
// @ts-expect-error no target
export const neither: MCPProxyClientOptions = { ...base };
// @ts-expect-error unknown transport
export const badTransport: MCPProxyClientOptions = { ...base, mcpServerUrl: 'x', transport: 'grpc' };

// ——— Notifications: one listener for all (narrowed by method), or one per method ———
client.on('notification', (n) => {
  if (n.method === 'notifications/message') {
    type Level = typeof n.params.level;
    type _ = Expect<Equal<Level, LoggingLevel>>;
  }
  if (n.method === 'notifications/resources/updated') {
    type _ = Expect<Equal<typeof n.params.uri, string>>;
  }
});
const off = client.on('notifications/progress', (params) => {
  type _ = Expect<Equal<typeof params.progress, number>>;
});
off();
// @ts-expect-error not a server notification
client.on('notifications/bogus', () => undefined);
export type Notifications = Expect<Extends<ServerNotification['method'], `notifications/${string}`>>;

// ——— Errors: one hierarchy; McpError's code is the JSON-RPC number ———
declare const e: unknown;
export type OneHierarchy = [
  Expect<Extends<McpError, MCPProxyError>>,
  Expect<Extends<ProxyAuthError, MCPProxyError>>,
];
if (e instanceof McpError) {
  type _ = Expect<Equal<typeof e.code, number>>;
  type _R = Expect<Equal<typeof e.rpcCode, number>>;
}
if (e instanceof MCPProxyError) {
  type _ = Expect<Extends<ErrorCode, typeof e.code>>;
  type _N = Expect<Extends<number, typeof e.code>>;
  type _S = Expect<Equal<typeof e.status, number | undefined>>;
  if (typeof e.code === 'string') {
    type _C = Expect<Extends<'unauthorized', typeof e.code>>;
  }
}
if (e instanceof ProxyAuthError) {
  // Failures on the way to the server have string codes only.
  type _ = Expect<Equal<Extends<typeof e.code, string>, true>>;
}
if (e instanceof TargetForbiddenError) {
  type _ = Expect<Extends<'address_forbidden', NonNullable<typeof e.reason>>>;
}
if (e instanceof UpstreamError) {
  type _ = Expect<Equal<typeof e.upstreamStatus, number | undefined>>;
}

// ——— Signing in: the typed error, authorize(), onAuthRequired ———
export type SignIn = [
  Expect<Extends<UpstreamAuthRequiredError, UpstreamAuthError>>,
  Expect<Extends<SignInError, MCPProxyError>>,
  Expect<Equal<ReturnType<typeof client.authorize>, Promise<SignInResult>>>,
  Expect<Equal<SignInResult['server'], string | undefined>>,
];
if (e instanceof UpstreamAuthRequiredError) {
  type _U = Expect<Equal<typeof e.authorizeUrl, string | undefined>>;
  type _S = Expect<Equal<typeof e.server, string | undefined>>;
  type _C = Expect<Equal<typeof e.userCode, string | undefined>>;
  void client.authorize(e, { timeoutMs: 1000, signal: AbortSignal.timeout(1) });
  // @ts-expect-error: authorize() takes the sign-in error, not any error
  void client.authorize(new MCPProxyError('x', 'y'));
}
new MCPProxyClient({
  proxyUrl: 'http://p',
  proxyToken: 't',
  server: 's',
  signInTimeoutMs: 0,
  onAuthRequired: async (error, { authorize, signal }) => {
    type _E = Expect<Equal<typeof error, UpstreamAuthRequiredError>>;
    type _A = Expect<Equal<ReturnType<typeof authorize>, Promise<SignInResult>>>;
    type _G = Expect<Equal<typeof signal, AbortSignal>>;
    return false;
  },
});

// ——— Server-to-client request handlers: typed params and results ———
const streaming = new MCPProxyClient({
  proxyUrl: 'http://p',
  proxyToken: 't',
  mcpServerUrl: 'x',
  transport: 'ws',
});
streaming.setRequestHandler('sampling/createMessage', async (params, extra) => {
  type _P = Expect<Equal<typeof params, CreateMessageParams>>;
  type _S = Expect<Equal<typeof extra.signal, AbortSignal>>;
  type _I = Expect<Equal<typeof extra.requestId, RequestId>>;
  return { role: 'assistant', content: { type: 'text', text: 'hi' }, model: 'm' };
});
streaming.setRequestHandler('elicitation/create', (params) => {
  type _P = Expect<Equal<typeof params, ElicitParams>>;
  return { action: 'decline' };
});
streaming.setRequestHandler('roots/list', () => ({ roots: [{ uri: 'file:///' }] }));
// @ts-expect-error a sampling result needs a model
streaming.setRequestHandler('sampling/createMessage', () => ({
  role: 'assistant',
  content: { type: 'text', text: '' },
}));
// @ts-expect-error not an elicitation action
streaming.setRequestHandler('elicitation/create', () => ({ action: 'maybe' }));
// @ts-expect-error not a server-to-client request
streaming.setRequestHandler('tools/list', () => ({ tools: [] }));
void streaming.callTool('slow', {}, { onprogress: (p) => p.progress.toFixed() });
export const socket: WebSocket = streaming.connectWebSocket();

// ——— Hand-written spec types agree with the official SDK's spec.types (drift is a compile error) ———
// (Its zod-inferred types.js declare optionals as `T | undefined`, which exactOptionalPropertyTypes
// keeps apart from the spec's plain optionals; without that flag they are compatible too.)
// What a server typed with the SDK returns fits our result types…
export type FromSdk = [
  Expect<Extends<Sdk.InitializeResult, InitializeResult>>,
  Expect<Extends<Sdk.ListToolsResult, ListToolsResult>>,
  Expect<Extends<Sdk.CallToolResult, CallToolResult>>,
  Expect<Extends<Sdk.ListResourcesResult, ListResourcesResult>>,
  Expect<Extends<Sdk.ListResourceTemplatesResult, ListResourceTemplatesResult>>,
  Expect<Extends<Sdk.ReadResourceResult, ReadResourceResult>>,
  Expect<Extends<Sdk.ListPromptsResult, ListPromptsResult>>,
  Expect<Extends<Sdk.GetPromptResult, GetPromptResult>>,
  Expect<Extends<Sdk.CompleteResult, CompleteResult>>,
  Expect<Extends<Sdk.CreateMessageRequestParams, CreateMessageParams>>,
  Expect<Extends<Sdk.ElicitRequestParams, ElicitParams>>,
];
// …and our results are what SDK-typed code expects.
export type ToSdk = [
  Expect<Extends<CallToolResult, Sdk.CallToolResult>>,
  Expect<Extends<ListToolsResult, Sdk.ListToolsResult>>,
  Expect<Extends<ReadResourceResult, Sdk.ReadResourceResult>>,
  Expect<Extends<GetPromptResult, Sdk.GetPromptResult>>,
  Expect<Extends<CompleteResult, Sdk.CompleteResult>>,
  Expect<Extends<InitializeResult, Sdk.InitializeResult>>,
  Expect<Extends<LoggingLevel, Sdk.LoggingLevel>>,
  Expect<Extends<CreateMessageResult, Sdk.CreateMessageResult>>,
  Expect<Extends<ElicitResult, Sdk.ElicitResult>>,
  Expect<Extends<ListRootsResult, Sdk.ListRootsResult>>,
  Expect<Equal<Sdk.LoggingLevel, LoggingLevel>>,
  Expect<Equal<Awaited2<ReturnType<typeof client.callTool>>, CallToolResult>>,
];
