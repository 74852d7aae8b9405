/**
 * @module surfaces/mcp/virtual-handler
 * `/servers/{name}/mcp` when `name` is a virtual server (issue 20): the proxy is the MCP server,
 * statelessly (no `Mcp-Session-Id`: what it holds is per principal, in virtual/member-sessions.ts),
 * answering each POST with JSON. There is no GET stream and nothing to DELETE (405, as the
 * Streamable HTTP transport allows).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../../errors.ts';
import { callerSignal } from '../../http/caller-signal.ts';
import type { Principal } from '../../identity/principal.ts';
import type { JsonRpcMessage, JsonRpcResponse } from '../../jsonrpc.ts';
import { headerValue } from '../../upstream/http.ts';
import { checkHeaderAgreement } from '../../upstream/request-metadata.ts';
import { SearchBudget } from '../../virtual/tool-search.ts';
import type { VirtualServers } from '../../virtual/virtual-servers.ts';

/** One request to a virtual server's Streamable HTTP endpoint, its body parsed (POST) or not. */
export interface VirtualExchange {
  readonly name: string;
  readonly identity: Principal;
  /** The POSTed messages (requests as notifications already dropped); undefined for GET/DELETE. */
  readonly messages: readonly JsonRpcMessage[] | undefined;
  readonly batch: boolean;
}

/** Answers a request to a virtual server's endpoint. */
export async function serveVirtual(
  virtual: VirtualServers,
  exchange: VirtualExchange,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  virtual.checkReach(exchange.name, exchange.identity.grants);
  if (exchange.messages === undefined) throw new ProxyError('method_not_allowed');
  const signal = callerSignal(reply);
  const protocolVersion = headerValue(request.headers, 'mcp-protocol-version');
  // A 2026-07-28 request's headers must agree with its body, as on every other route.
  for (const message of exchange.messages) checkHeaderAgreement(request.headers, message);
  const answers: JsonRpcResponse[] = [];
  const searches = new SearchBudget();
  for (const message of exchange.messages) {
    // A client's answer to a server request: the virtual server sends none yet.
    if (!('method' in message)) continue;
    const answer = await virtual.handle(exchange.name, {
      caller: exchange.identity,
      message,
      protocolVersion,
      signal,
      searches,
    });
    if (answer !== undefined) answers.push(answer);
  }
  if (answers.length === 0) return reply.code(202).send();
  request.audit?.answer(answers[0]);
  return reply
    .code(200)
    .type('application/json')
    .send(exchange.batch ? answers : answers[0]);
}
