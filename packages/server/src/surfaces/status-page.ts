/**
 * @module surfaces/status-page
 * The `/status` page: one self-contained HTML document (no external asset, no inline handler)
 * whose script and style are allowed by their hashes in a strict Content-Security-Policy with
 * Trusted Types required, so nothing on it can run markup. The page holds no data: it asks for
 * the metrics token (or an admin token) — or reads it from the URL fragment, which never reaches
 * a server or a log — keeps it in the tab's sessionStorage, and polls `/status.json` with it.
 * Every value is written with `textContent`: upstream hosts and codes are caller-influenced text.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light dark; --line: #8884; --muted: #888; --bad: #c62828; --good: #2e7d32; --warn: #b26a00; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 1rem 1.5rem; max-width: 1100px; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
.muted { color: var(--muted); } .bad { color: var(--bad); } .good { color: var(--good); } .warn { color: var(--warn); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .6rem; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .7rem; }
.tile b { display: block; font-size: 1.5rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: .85rem; } td.n, th.n { text-align: right; }
form { display: flex; gap: .5rem; margin: 1rem 0; } input { flex: 1; font: inherit; padding: .3rem; }
#login[hidden], #view[hidden] { display: none; }
`;

const SCRIPT = `
'use strict';
const KEY = 'mcp-proxy-status-token';
const $ = (id) => document.getElementById(id);
const fragment = new URLSearchParams(location.hash.slice(1)).get('token');
if (fragment) { sessionStorage.setItem(KEY, fragment); history.replaceState(null, '', location.pathname); }
let previous;
let timer;
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function ago(ms, now) { if (ms === null || ms === undefined) return '—'; const s = Math.max(0, Math.round((now - ms) / 1000)); return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago'; }
function ms(v) { return v === null ? '—' : v < 10 ? v.toFixed(2) + ' ms' : Math.round(v) + ' ms'; }
function tile(label, value, cls) { const t = el('div', undefined, 'tile'); t.append(el('span', label, 'muted'), el('b', value, cls)); return t; }
function table(id, head, rows, empty) {
  const t = $(id); t.replaceChildren();
  const tr = el('tr'); head.forEach(([h, n]) => tr.append(el('th', h, n ? 'n' : ''))); t.append(tr);
  if (rows.length === 0) { const r = el('tr'); const c = el('td', empty, 'muted'); c.colSpan = head.length; r.append(c); t.append(r); return; }
  for (const row of rows) { const r = el('tr'); row.forEach((cell, i) => { const c = el('td', cell.text ?? cell, (head[i][1] ? 'n ' : '') + (cell.cls ?? '')); r.append(c); }); t.append(r); }
}
function render(s) {
  const rate = previous ? ((s.requests.total - previous.requests.total) * 1000) / Math.max(1, s.now - previous.now) : 0;
  const errRate = previous ? ((s.requests.errors - previous.requests.errors) * 1000) / Math.max(1, s.now - previous.now) : 0;
  previous = s;
  const held = Object.values(s.sessions.byTransport).reduce((a, b) => a + b, 0);
  $('instance').textContent = 'instance ' + s.instance.id + ' · up ' + ago(s.instance.startedAt, s.now).replace(' ago', '') + ' · updated ' + new Date(s.now).toLocaleTimeString();
  $('tiles').replaceChildren(
    tile('requests', s.requests.total), tile('requests/s', rate.toFixed(1)),
    tile('errors', s.requests.errors, s.requests.errors ? 'warn' : ''), tile('errors/s', errRate.toFixed(1), errRate ? 'bad' : ''),
    tile('held sessions', held), tile('WebSockets', s.sessions.webSockets),
    tile('egress refusals', s.egressRefusals.total, s.egressRefusals.total ? 'warn' : ''));
  table('upstreams', [['server'], ['host'], ['health'], ['calls', 1], ['errors', 1], ['p50', 1], ['p90', 1], ['p99', 1], ['last success'], ['last failure']],
    s.upstreams.map((u) => [u.servers.join(', ') || '(by URL)', u.host,
      { text: u.health, cls: u.health === 'up' ? 'good' : u.health === 'failing' ? 'bad' : 'muted' },
      u.calls, u.errors, ms(u.window.p50), ms(u.window.p90), ms(u.window.p99), ago(u.lastOkAt, s.now),
      u.lastErrorAt === null ? '—' : ago(u.lastErrorAt, s.now) + ' (' + u.lastError + ')']), 'No upstream yet.');
  table('codes', [['error code'], ['count', 1]], Object.entries(s.requests.errorsByCode).map(([c, n]) => [c, n]), 'No errors.');
  table('routes', [['route'], ['requests', 1]], Object.entries(s.requests.byRoute).map(([r, n]) => [r, n]), 'No requests.');
  const named = (i) => ({ text: i.self ? i.id + ' (this one)' : i.id, cls: i.self ? 'good' : '' });
  table('instances', [['instance'], ['up'], ['requests', 1], ['errors', 1], ['last heard']],
    s.instances.map((i) => [named(i), ago(i.startedAt, s.now).replace(' ago', ''), i.requests, i.errors, i.self ? 'now' : ago(i.heardAt, s.now)]), '');
  table('sessions', [['instance'], ['kind'], ['open', 1]],
    s.instances.flatMap((i) => Object.entries(i.sessions.byTransport).map(([k, n]) => [named(i), k, n]).concat([[named(i), '/ws sockets', i.sessions.webSockets]])), '');
  table('refusals', [['when'], ['host'], ['reason']], s.egressRefusals.recent.map((r) => [ago(r.at, s.now), r.host, r.reason]), 'No refusals.');
}
async function poll() {
  clearTimeout(timer);
  const token = sessionStorage.getItem(KEY);
  if (!token) { $('login').hidden = false; $('view').hidden = true; return; }
  try {
    const res = await fetch('status.json', { headers: { authorization: 'Bearer ' + token }, cache: 'no-store' });
    if (res.status === 401 || res.status === 403) { sessionStorage.removeItem(KEY); $('problem').textContent = 'That token was refused.'; $('login').hidden = false; $('view').hidden = true; return; }
    if (!res.ok) throw new Error('HTTP ' + res.status);
    $('login').hidden = true; $('view').hidden = false; $('problem').textContent = '';
    render(await res.json());
  } catch (error) { $('problem').textContent = 'Cannot reach the proxy: ' + error.message; }
  timer = setTimeout(poll, 2000);
}
$('login').addEventListener('submit', (event) => { event.preventDefault(); sessionStorage.setItem(KEY, $('token').value); $('token').value = ''; poll(); });
poll();
`;

const BODY = `<h1>mcp-proxy status</h1>
<div id="instance" class="muted"></div>
<div id="problem" class="bad"></div>
<form id="login" hidden><input id="token" type="password" autocomplete="off" placeholder="METRICS_TOKEN or an admin token" aria-label="token"><button>Show</button></form>
<div id="view" hidden>
<div id="tiles" class="tiles"></div>
<h2>Upstreams <span class="muted">(time to headers, last 1–2 min)</span></h2><table id="upstreams"></table>
<h2>Errors by code <span class="muted">(since start)</span></h2><table id="codes"></table>
<h2>Requests by route</h2><table id="routes"></table>
<h2>Instances <span class="muted">(sharing this one's store)</span></h2><table id="instances"></table>
<h2>Open sessions <span class="muted">(by instance and upstream transport)</span></h2><table id="sessions"></table>
<h2>Recent egress refusals</h2><table id="refusals"></table>
</div>`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** The page and the headers it must be served with. */
export interface StatusPage {
  readonly html: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** Builds the page once (its hashes are computed at start-up, not per request). */
export function statusPage(): StatusPage {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><title>mcp-proxy status</title><style>${STYLE}</style></head><body>${BODY}<script>${SCRIPT}</script></body></html>`;
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'content-security-policy': [
        "default-src 'none'",
        `script-src ${hash(SCRIPT)}`,
        `style-src ${hash(STYLE)}`,
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        'trusted-types',
      ].join('; '),
    },
  };
}
