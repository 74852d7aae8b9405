/**
 * @module surfaces/oauth/pages
 * The two small pages of the sign-in (docs/oauth.md, the bind protocol): the start page asks its
 * opener for the caller's proxy credential and binds the sign-in with it; the callback page tells
 * the app that bound it (an origin listed in CORS_ORIGINS, never `*`) and closes. Both carry a
 * strict CSP with a per-response nonce, no referrer and no caching.
 */

/** The message the callback page posts to its opener. */
export const CALLBACK_MESSAGE_TYPE = 'mcp-proxy:oauth';
/** The start page's request to its opener (no secret: sent to any origin). */
export const BIND_MESSAGE_TYPE = 'mcp-proxy:oauth-bind';
/** The opener's answer, carrying its proxy credential (sent to the proxy's origin only). */
export const CREDENTIAL_MESSAGE_TYPE = 'mcp-proxy:oauth-credential';
/** How long the start page waits for its opener's answer. */
const OPENER_WAIT_MS = 10_000;

/** Headers of both pages: no framing, no referrer (URLs hold codes), only the inline script. */
export function pageHeaders(nonce: string, connect: boolean): Record<string, string> {
  return {
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; connect-src ${connect ? "'self'" : "'none'"}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-type': 'text/html; charset=utf-8',
  };
}

/** A fresh script nonce. */
export function scriptNonce(): string {
  return crypto.randomUUID().replaceAll('-', '');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A value as a script literal that cannot end the script element. */
function literal(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function shell(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

/** A page that only says something (an unknown link, a refusal without anyone to tell). */
export function messagePage(text: string): string {
  return shell('mcp-proxy sign-in', `<p>${escapeHtml(text)}</p><p>You can close this window.</p>`);
}

/**
 * The start page: asks `window.opener` for the credential, POSTs it same-origin with the
 * opener's origin, then goes to the authorization URL the proxy answers. Without an opener, or
 * without an answer, it says what to do and binds nothing.
 */
export function startPage(nonce: string, server: string): string {
  const texts = {
    noOpener:
      'Open this sign-in link from the app that asked you to sign in: it opens it in a popup and confirms it is you. A link opened on its own, or sent by someone else, cannot be used.',
    noAnswer:
      'The app that opened this window did not answer. Retry the call in the app and sign in from the window it opens.',
    refused: 'The sign-in was refused.',
    unreachable: 'The proxy could not be reached: retry the call in the app.',
  };
  const script = `(function(){var t=${literal(texts)};var m=document.getElementById('m');function say(x){m.textContent=x;}
if(!window.opener){say(t.noOpener);return;}
var done=false;var timer=setTimeout(function(){if(!done){done=true;say(t.noAnswer);}},${OPENER_WAIT_MS});
window.addEventListener('message',function(e){var d=e.data;
if(done||e.source!==window.opener||!d||d.type!==${literal(CREDENTIAL_MESSAGE_TYPE)}||typeof d.credential!=='string')return;
done=true;clearTimeout(timer);say('Connecting…');
fetch(location.pathname,{method:'POST',credentials:'same-origin',headers:{'content-type':'application/json'},body:JSON.stringify({credential:d.credential,origin:e.origin})})
.then(function(r){return r.json().then(function(b){return{ok:r.ok,b:b};});})
.then(function(x){if(x.ok&&x.b&&typeof x.b.authorizeUrl==='string'){location.replace(x.b.authorizeUrl);}else{say((x.b&&x.b.error&&x.b.error.message)||t.refused);}})
.catch(function(){say(t.unreachable);});});
window.opener.postMessage({type:${literal(BIND_MESSAGE_TYPE)}},'*');})();`;
  return shell(
    'mcp-proxy sign-in',
    `<p data-mcpp-bind>Signing in to ${escapeHtml(server)}…</p><p id="m"></p><script nonce="${nonce}">${script}</script>`,
  );
}

/**
 * The callback page: tells the opener the outcome (addressed to `origin` only, the browser drops
 * it for any other page) and, on success, closes. Without an origin to tell it only says so.
 */
export function callbackPage(
  nonce: string,
  outcome: { ok: true; server: string } | { ok: false; code: string; message: string },
  origin: string | undefined,
): string {
  const text = outcome.ok ? `Signed in to ${outcome.server}.` : outcome.message;
  const message = { type: CALLBACK_MESSAGE_TYPE, ...outcome };
  const close = outcome.ok ? 'window.close();' : '';
  const script =
    origin === undefined
      ? ''
      : `<script nonce="${nonce}">try{if(window.opener){window.opener.postMessage(${literal(message)},${literal(origin)});${close}}}catch(e){}</script>`;
  return shell('mcp-proxy sign-in', `<p>${escapeHtml(text)}</p><p>You can close this window.</p>${script}`);
}
