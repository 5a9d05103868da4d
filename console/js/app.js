// The console's shell: language, sign-in, the header, client-side routes and the live stream.
import { api, get, maybe, setCsrf, whenSignedOut, ApiError } from './api.js';
import { chooseLang, loadCatalogue, t, lang, setZone } from './i18n.js';
import { connect, close as closeLive, alertCue, setCue } from './live.js';
import { esc } from './util.js';
import { renderSignIn } from './pages/signin.js';

// path pattern → [page module, nav key]; the server answers index.html for each (api/console.py PAGES).
const ROUTES = [
  [/^\/(alerts)?$/, 'alerts'], [/^\/alerts\/([^/]+)$/, 'alert'], [/^\/map$/, 'map'],
  [/^\/sites$/, 'sites'], [/^\/sites\/([^/]+)$/, 'site'], [/^\/hazards$/, 'hazards'], [/^\/hazards\/([^/]+)$/, 'hazard'],
  [/^\/reports$/, 'reports'], [/^\/credit$/, 'credit'], [/^\/credit\/([^/]+)$/, 'credit'],
  [/^\/subscriptions$/, 'subscriptions'], [/^\/silences$/, 'silences'], [/^\/users$/, 'users'], [/^\/audit$/, 'audit'],
];
const NAV = {
  admin: ['alerts', 'map', 'sites', 'hazards', 'reports', 'credit', 'subscriptions', 'silences', 'users', 'audit'],
  operator: ['alerts', 'map', 'sites', 'hazards', 'reports', 'credit', 'subscriptions', 'silences'],
  viewer: ['alerts', 'map', 'sites', 'hazards', 'reports', 'credit', 'subscriptions', 'silences'],
  site: ['alerts', 'sites', 'hazards'],
};
const NAV_OF_PAGE = { alert: 'alerts', site: 'sites', hazard: 'hazards' };

// What every page reads: who is signed in and the district's registry (fetched once per sign-in).
export const ctx = { me: null, district: null, sites: new Map(), departments: new Map(), streets: new Map() };
export const can = {
  write: () => ['operator', 'admin'].includes(ctx.me?.role),
  admin: () => ctx.me?.role === 'admin',
  site: () => ctx.me?.role === 'site',
};

let cleanup = null;
let visits = 0;
const main = () => document.getElementById('main');

export function toast(text, isError = false) {
  const box = document.getElementById('toast');
  const div = document.createElement('div');
  div.className = `msg${isError ? ' err' : ''}`;
  div.textContent = text;
  box.append(div);
  setTimeout(() => div.remove(), isError ? 8000 : 3500);
}
export function failed(err) {
  if (err instanceof ApiError && err.status === 401) return;
  if (!(err instanceof ApiError)) console.error(err);  // a bug of the console, not an answer of the API
  toast(err instanceof ApiError ? t('error.api', { status: err.status, detail: err.detail }) : String(err), true);
}

export function go(path, replace = false) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  route();
}

async function route() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  if (!ctx.me) { showSignIn(); return; }
  const path = location.pathname.replace(/\/+$/, '') || '/';
  let page = null; let arg = null;
  for (const [re, name] of ROUTES) { const m = path.match(re); if (m) { page = name; arg = m[1] && name !== 'alerts' ? decodeURIComponent(m[1]) : null; break; } }
  markNav(NAV_OF_PAGE[page] || page);
  // Each visit renders into its own element: a page still awaiting an answer when the next one
  // starts writes into its detached element, never into the new page, and is cleaned up on return.
  const mine = ++visits;
  const el = document.createElement('div');
  main().replaceChildren(el);
  if (!page) { el.innerHTML = `<h1>${esc(t('page.notfound'))}</h1>`; return; }
  el.innerHTML = `<p class="loading">${esc(t('loading'))}</p>`;
  try {
    const mod = await import(`./pages/${page}.js`);
    const result = await mod.render(el, arg);
    const done = typeof result === 'function' ? result : null;
    if (mine === visits) cleanup = done; else if (done) done();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    el.innerHTML = `<h1>${esc(t('error.title'))}</h1><p role="alert">${esc(err instanceof ApiError ? err.detail : String(err))}</p>`;
    if (!(err instanceof ApiError)) console.error(err);
  }
}

function markNav(key) {
  for (const a of document.querySelectorAll('#top nav a')) {
    if (a.dataset.key === key) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

function header() {
  const top = document.getElementById('top');
  const items = NAV[ctx.me.role] || NAV.viewer;
  const href = (k) => (k === 'alerts' ? '/alerts' : `/${k}`);
  top.innerHTML = `<span class="brand">${esc(t('app.name'))}</span>
    <nav aria-label="${esc(t('nav.label'))}">${items.map((k) => `<a href="${href(k)}" data-key="${k}">${esc(t(`nav.${k}`))}</a>`).join('')}</nav>
    <div class="tools">
      <span class="live" id="live-status" aria-live="polite">${esc(t('live.off'))}</span>
      <label><input type="checkbox" id="cue"${alertCue.on ? ' checked' : ''}> ${esc(t('cue.label'))}</label>
      <label>${esc(t('lang.label'))} <select id="lang">
        <option value="zh"${lang === 'zh' ? ' selected' : ''}>中文</option><option value="en"${lang === 'en' ? ' selected' : ''}>English</option>
      </select></label>
      <span>${esc(ctx.me.username)} <span class="badge">${esc(t(`role.${ctx.me.role}`))}</span></span>
      <button type="button" id="signout">${esc(t('signout'))}</button>
    </div>`;
  top.hidden = false;
  top.querySelector('#cue').addEventListener('change', (e) => setCue(e.target.checked));
  top.querySelector('#lang').addEventListener('change', (e) => switchLang(e.target.value));
  top.querySelector('#signout').addEventListener('click', signOut);
}

async function switchLang(which) {
  localStorage.setItem('safewatch.lang', which);
  const url = new URL(location.href);
  url.searchParams.set('lang', which);
  history.replaceState(null, '', url.pathname + url.search);
  await loadCatalogue(which);
  setZone(ctx.district?.timezone);
  document.getElementById('skip-link').textContent = t('skip');
  if (ctx.me) { header(); connect(document.getElementById('live-status')); }
  route();
}

async function signOut() {
  try { await api('DELETE', '/session', undefined, { quiet401: true }); } catch (e) { /* already gone */ }
  signedOut();
}
function signedOut() {
  ctx.me = null;
  setCsrf(null);
  localStorage.removeItem('safewatch.signedIn');
  closeLive();
  document.getElementById('top').hidden = true;
  document.getElementById('top').innerHTML = '';
  showSignIn();
}
whenSignedOut(() => { if (ctx.me) { signedOut(); toast(t('session.expired'), true); } });

function showSignIn() {
  visits += 1;  // a page still loading for the signed-out user is not shown
  if (cleanup) { cleanup(); cleanup = null; }
  renderSignIn(main(), signedIn);
}

export async function signedIn(me) {
  ctx.me = me;
  setCsrf(me.csrf_token);
  localStorage.setItem('safewatch.signedIn', '1');
  const [district, sites, departments] = await Promise.all([maybe('/district'), get('/sites'), get('/departments')]);
  ctx.district = district || { timezone: 'UTC', streets: [], families: {}, escalation: [] };
  setZone(ctx.district.timezone);
  ctx.sites = new Map(sites.map((s) => [s.id, s]));
  ctx.departments = new Map(departments.map((d) => [d.id, d]));
  ctx.streets = new Map((ctx.district.streets || []).map((s) => [s.id, s]));
  header();
  connect(document.getElementById('live-status'));
  route();
}

export const siteName = (id) => ctx.sites.get(id)?.name || '';
export const streetName = (id) => ctx.streets.get(id)?.name || id;
export const deptName = (id) => ctx.departments.get(id)?.name || id;
export const unitOf = (family, metric) => ctx.district?.families?.[family]?.[metric]?.unit || '';

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/console/')) return;
  e.preventDefault();
  go(url.pathname + url.search);
});
window.addEventListener('popstate', route);

async function boot() {
  await loadCatalogue(chooseLang());
  document.getElementById('skip-link').textContent = t('skip');
  // Only ask who is signed in after a sign-in in this browser: a 401 would be logged as an error.
  if (!localStorage.getItem('safewatch.signedIn')) { showSignIn(); return; }
  try {
    const me = await api('GET', '/session', undefined, { quiet401: true });
    await signedIn(me);
  } catch (err) {
    if (!(err instanceof ApiError) || ![401, 404].includes(err.status)) failed(err);
    showSignIn();
  }
}
boot();
