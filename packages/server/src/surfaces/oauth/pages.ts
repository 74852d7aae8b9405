/**
 * @module surfaces/oauth/pages
 * The two small pages of the sign-in (docs/oauth.md, the bind protocol): the start page names
 * what is being connected, asks its opener for the caller's proxy credential and binds the
 * sign-in with it on the user's click; the callback page completes it with the nonce this tab
 * kept, tells the app that bound it (an origin listed in CORS_ORIGINS, never `*`) and closes. Both carry a
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
/**
 * How long the Continue button stays disabled once it is shown, and again each time the page is
 * back visible and focused after it was hidden or lost focus (review6 D2): a page that opens the
 * popup under the user's cursor in the middle of a double-click, or brings it to the front under
 * a click, must not have that click land on it (clickjacking by timing).
 */
export const CONTINUE_ARM_MS = 500;

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

/** What the start page names (review item 6: the user sees what is being connected, and for whom). */
export interface StartPageInfo {
  /** The configured server's name, or the host of a raw URL. */
  readonly server: string;
  /** The MCP server's host, shown beside a configured name (the name alone could be anyone's). */
  readonly host: string;
  /** The authorization server's host (its issuer's). */
  readonly issuerHost: string;
  /**
   * The authorization endpoint's host: where the Continue button goes, so where the user signs
   * in (review oauth6 R2: named, not the issuer alone; another origin only for an issuer the
   * operator configured).
   */
  readonly authorizeHost: string;
  /** How the page binds when no app answers it (credentials/sign-in-links.ts). */
  readonly confirmation: 'code' | 'login' | 'none';
  /** The identity provider's host, for a `login` confirmation. */
  readonly loginHost?: string | undefined;
}

/** The sessionStorage key of a bound sign-in's nonce (per `state`): see {@link callbackPage}. */
export const NONCE_KEY_PREFIX = 'mcpp-oauth:';
/** The sessionStorage key of a login's nonce (per its `state`): see {@link loginReturnPage}. */
export const LOGIN_NONCE_KEY_PREFIX = 'mcpp-login:';

/** What a page says when its POST fails, or when it cannot keep the next nonce. */
const FAILURE_TEXTS = {
  refused: 'The sign-in was refused.',
  unreachable: 'The proxy could not be reached: retry the call in the app.',
  noStorage: 'This browser keeps no session storage for the proxy: the sign-in cannot be completed here.',
};

/** How every page script opens: its `texts` as `t`, and `say` writing into the page's message line. */
function scriptOpening(texts: Record<string, string>): string {
  return `(function(){var t=${literal(texts)};var m=document.getElementById('m');function say(x){m.textContent=x;}`;
}

/**
 * The page script's one POST to its own path: `then(answer)` with a 2xx JSON answer whose
 * `fields` are strings, else the refusal's message said.
 */
const POST_SCRIPT = `function post(body,fields,then){return fetch(location.pathname,{method:'POST',credentials:'same-origin',headers:{'content-type':'application/json'},body:JSON.stringify(body)})
.then(function(r){return r.json().then(function(x){return{ok:r.ok,b:x};});})
.then(function(x){var b=x.b||{};if(x.ok&&fields.every(function(f){return typeof b[f]==='string';})){then(b);}else{say((b.error&&b.error.message)||t.refused);}})
.catch(function(){say(t.unreachable);});}
function keep(prefix,state,value){try{sessionStorage.setItem(prefix+state,value);return true;}catch(err){say(t.noStorage);return false;}}`;

/**
 * The script lines of a page a redirect lands on: `query` is the answer's query, `n` the nonce this
 * tab kept under `prefix` for its `state` (taken: read once, then forgotten), and the code leaves
 * the address bar.
 */
function takeNonceScript(prefix: string): string {
  return `var query=location.search;var state=new URLSearchParams(query).get('state')||'';var key=${literal(prefix)}+state;var n='';
try{n=sessionStorage.getItem(key)||'';sessionStorage.removeItem(key);}catch(e){}
try{history.replaceState(null,'',location.pathname);}catch(e){}`;
}

/**
 * The start page: names the server, the authorization server and (once it answered) the app that
 * opened it, and binds only when the user clicks (confused deputy, review item 6: an
 * authorization server that remembers consent per client would otherwise hand over a token with
 * no prompt at all). It asks `window.opener` for the credential, and on the click POSTs it
 * same-origin with the opener's origin; the bind answers the authorization URL and a nonce, kept
 * in this tab's sessionStorage for the proxy's origin (review R1: only this tab, at this origin
 * and port, can complete the sign-in), then it goes to the authorization server. Without an
 * opener, or without an answer, it offers the link's confirmation (issue 18: a client that
 * opened it from a URL elicitation): the one-time code to type, with a warning to type only a
 * code the user's own app showed, or a sign-in to the proxy at the principal's identity
 * provider; a link with neither binds nothing.
 */
export function startPage(nonce: string, info: StartPageInfo): string {
  const texts = {
    noOpener:
      'Open this sign-in link from the app that asked you to sign in: it opens it in a popup and confirms it is you. A link opened on its own, or sent by someone else, cannot be used.',
    noAnswer:
      'The app that opened this window did not answer. Retry the call in the app and sign in from the window it opens.',
    asks: ' asks to connect your account. Continue only if you started this in that app.',
    ...FAILURE_TEXTS,
    codeWarning:
      'Type the code your own app showed you next to this link, just now. If someone sent you this link or a code, stop: typing their code would connect your account to them.',
  };
  const script = `${scriptOpening(texts)}var b=document.getElementById('go');
${POST_SCRIPT}
function arm(button){var off=false;var timer;function can(){return document.visibilityState==='visible'&&document.hasFocus();}
function down(){clearTimeout(timer);button.disabled=true;}
function up(){down();if(!off&&can())timer=setTimeout(function(){if(!off&&can())button.disabled=false;},${CONTINUE_ARM_MS});}
document.addEventListener('visibilitychange',up);window.addEventListener('focus',up);window.addEventListener('blur',down);up();
return function(hold){off=hold;up();};}
function go(x){if(keep(${literal(NONCE_KEY_PREFIX)},x.state,x.nonce))location.replace(x.authorizeUrl);}
function unopened(fallback){var c=${literal(info.confirmation)};if(c==='none'){say(fallback);return;}
var box=document.getElementById(c);box.hidden=false;var button=document.getElementById(c+'-go');var hold=arm(button);
button.addEventListener('click',function(){if(button.disabled)return;
if(c==='code'){var typed=document.getElementById('code-input').value;if(!typed)return;hold(true);say('Checking the code…');post({code:typed},['authorizeUrl','state','nonce'],go).then(function(){hold(false);});}
else{hold(true);say('Going to sign-in…');post({login:true},['loginUrl','state','nonce'],function(x){if(keep(${literal(LOGIN_NONCE_KEY_PREFIX)},x.state,x.nonce))location.replace(x.loginUrl);});}});}
if(!window.opener){unopened(t.noOpener);return;}
var answered=false;var credential;var opener;var holdB;var timer=setTimeout(function(){if(!answered){answered=true;unopened(t.noAnswer);}},${OPENER_WAIT_MS});
window.addEventListener('message',function(e){var d=e.data;
if(answered||e.source!==window.opener||!d||d.type!==${literal(CREDENTIAL_MESSAGE_TYPE)}||typeof d.credential!=='string')return;
answered=true;clearTimeout(timer);credential=d.credential;opener=e.origin;
document.getElementById('app').textContent=opener;document.getElementById('who').hidden=false;b.disabled=true;b.hidden=false;holdB=arm(b);});
b.addEventListener('click',function(){if(credential===undefined||b.disabled)return;holdB(true);say('Connecting…');
post({credential:credential,origin:opener},['authorizeUrl','state','nonce'],go);});
window.opener.postMessage({type:${literal(BIND_MESSAGE_TYPE)}},'*');})();`;
  const named =
    info.server === info.host
      ? escapeHtml(info.server)
      : `${escapeHtml(info.server)} (${escapeHtml(info.host)})`;
  const at = escapeHtml(info.authorizeHost);
  const where =
    info.authorizeHost === info.issuerHost
      ? `<strong>${at}</strong>`
      : `<strong>${at}</strong> (authorization server <strong>${escapeHtml(info.issuerHost)}</strong>)`;
  const button = info.authorizeHost === info.issuerHost ? at : `${at} (for ${escapeHtml(info.issuerHost)})`;
  const loginHost = escapeHtml(info.loginHost ?? '');
  return shell(
    'mcp-proxy sign-in',
    `<p data-mcpp-bind>Sign in to <strong>${named}</strong> with your account at ${where}.</p>` +
      `<p id="who" hidden>The app at <strong id="app"></strong>${escapeHtml(texts.asks)}</p>` +
      `<p><button id="go" type="button" hidden disabled>Continue to ${button}</button></p>` +
      `<div id="code" hidden><p><strong>${escapeHtml(texts.codeWarning)}</strong></p>` +
      `<p><label>Code from your app: <input id="code-input" autocomplete="off" spellcheck="false" maxlength="16"></label> ` +
      `<button id="code-go" type="button" disabled>Continue to ${button}</button></p></div>` +
      `<div id="login" hidden><p>To confirm it is you, sign in to the proxy with your account at <strong>${loginHost}</strong>; ` +
      `the sign-in to ${named} goes on only if that is the account that asked for it.</p>` +
      `<p><button id="login-go" type="button" disabled>Sign in at ${loginHost}</button></p></div>` +
      `<p id="m"></p><script nonce="${nonce}">${script}</script>`,
  );
}

/**
 * The page the identity provider sends the user back to after signing in to the proxy
 * (credentials/proxy-login.ts). Like {@link callbackPage} it completes nothing by itself: it
 * POSTs the answer's query with the nonce its tab kept, drops the code from the address bar, and
 * on success keeps the upstream sign-in's nonce and goes on to the authorization server.
 */
export function loginReturnPage(nonce: string): string {
  const script = `${scriptOpening(FAILURE_TEXTS)}
${POST_SCRIPT}
${takeNonceScript(LOGIN_NONCE_KEY_PREFIX)}
post({query:query,nonce:n},['authorizeUrl','state','nonce'],function(x){if(keep(${literal(NONCE_KEY_PREFIX)},x.state,x.nonce))location.replace(x.authorizeUrl);});})();`;
  return shell(
    'mcp-proxy sign-in',
    `<p data-mcpp-login>Checking who signed in…</p><p id="m"></p><script nonce="${nonce}">${script}</script>`,
  );
}

/**
 * The callback page (review R1): it completes nothing by itself. Its script reads the nonce the
 * start page kept in this tab's sessionStorage for the `state` in the URL, drops the code from
 * the address bar, and POSTs both same-origin; the proxy exchanges the code only when the nonce
 * is the one bound into that `state`. The answer names the app to tell (an origin listed in
 * CORS_ORIGINS, never `*`): the page posts it the outcome and, on success, closes.
 */
export function callbackPage(nonce: string): string {
  const texts = {
    ok: 'Signed in to ',
    ...FAILURE_TEXTS,
  };
  const script = `${scriptOpening(texts)}
${takeNonceScript(NONCE_KEY_PREFIX)}
function tell(origin,message,close){try{if(origin&&window.opener){window.opener.postMessage(message,origin);if(close)window.close();}}catch(e){}}
fetch(location.pathname,{method:'POST',credentials:'same-origin',headers:{'content-type':'application/json'},body:JSON.stringify({query:query,nonce:n})})
.then(function(r){return r.json().then(function(b){return{ok:r.ok,b:b};});})
.then(function(x){var b=x.b||{};if(x.ok&&b.ok===true){say(t.ok+b.server+'.');tell(b.openerOrigin,{type:${literal(CALLBACK_MESSAGE_TYPE)},ok:true,server:b.server},true);}
else{var e=b.error||{};var msg=e.message||t.refused;say(msg);tell(b.openerOrigin,{type:${literal(CALLBACK_MESSAGE_TYPE)},ok:false,code:(e.data&&e.data.code)||'oauth_state_invalid',message:msg},false);}})
.catch(function(){say(t.unreachable);});})();`;
  return shell(
    'mcp-proxy sign-in',
    `<p data-mcpp-callback>Finishing the sign-in…</p><p id="m"></p><p>You can close this window.</p><script nonce="${nonce}">${script}</script>`,
  );
}
