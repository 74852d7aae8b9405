/**
 * @module surfaces/oauth/routes
 * The browser legs of the upstream OAuth broker (issue 18), outside the authenticated scope: a
 * popup or tab carries no proxy token. `GET /oauth/start/{id}` follows a one-time link to the
 * authorization server; `GET /oauth/callback` completes the sign-in and answers a small page that
 * tells its opener (postMessage, to the origin that made the call only) and closes; the Client
 * ID Metadata Document is served at `/oauth/client-metadata.json`.
 */
import type { FastifyInstance } from 'fastify';
import type { OAuthBroker } from '../../credentials/broker.ts';
import { CALLBACK_PATH, CLIENT_METADATA_PATH } from '../../credentials/registration.ts';
import { ProxyError, toErrorReply } from '../../errors.ts';

/** The message the callback page posts to its opener. */
export const CALLBACK_MESSAGE_TYPE = 'mcp-proxy:oauth';

/** No framing, no referrer (the URL held the code), only the page's own inline script. */
function pageHeaders(nonce: string): Record<string, string> {
  return {
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; frame-ancestors 'none'; base-uri 'none'`,
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page the callback answers: tells the opener (origin-checked by the browser) and closes. */
function page(
  nonce: string,
  ok: boolean,
  text: string,
  server: string | undefined,
  origin: string | undefined,
): string {
  const message = JSON.stringify({ type: CALLBACK_MESSAGE_TYPE, ok, ...(server ? { server } : {}) });
  // `<` escaped so no value can end the script element.
  const script =
    origin === undefined
      ? ''
      : `<script nonce="${nonce}">try{if(window.opener){window.opener.postMessage(${message.replace(/</g, '\\u003c')},${JSON.stringify(origin).replace(/</g, '\\u003c')});window.close();}}catch(e){}</script>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>mcp-proxy sign-in</title></head><body><p>${escapeHtml(text)}</p><p>You can close this tab.</p>${script}</body></html>`;
}

/** Registers the OAuth broker's public routes. */
export async function oauthRoutes(app: FastifyInstance, broker: OAuthBroker): Promise<void> {
  app.get<{ Params: { id: string } }>('/oauth/start/:id', async (request, reply) => {
    const url = await broker.start(request.params.id);
    if (url === undefined) {
      const { status, body } = toErrorReply(new ProxyError('oauth_state_invalid'));
      return reply.code(status).headers({ 'cache-control': 'no-store' }).send(body);
    }
    return reply
      .code(302)
      .headers({ location: url, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
      .send();
  });

  app.get(CALLBACK_PATH, async (request, reply) => {
    const nonce = crypto.randomUUID().replaceAll('-', '');
    const query = new URL(request.url, 'http://callback.invalid').searchParams;
    try {
      const outcome = await broker.callback(query);
      return reply
        .code(200)
        .headers(pageHeaders(nonce))
        .type('text/html; charset=utf-8')
        .send(page(nonce, true, `Signed in to ${outcome.server}.`, outcome.server, outcome.openerOrigin));
    } catch (error) {
      const { status, error: failure } = toErrorReply(error);
      request.log.warn({ code: failure.code }, 'oauth callback refused');
      return reply
        .code(status)
        .headers(pageHeaders(nonce))
        .type('text/html; charset=utf-8')
        .send(page(nonce, false, failure.message, undefined, undefined));
    }
  });

  app.get(CLIENT_METADATA_PATH, async (_request, reply) => {
    const document = broker.clientMetadataDocument();
    if (document === undefined) return reply.code(404).send();
    return reply.code(200).header('cache-control', 'public, max-age=3600').send(document);
  });
}
