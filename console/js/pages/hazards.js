// The hazard ledger (/hazards): the books with state, deadline and time left (overdue in red),
// filters, and a form to file a hazard (a site user's self-report, a department's inspection).
import { get, post } from '../api.js';
import { ctx, can, failed, go, siteName, streetName, deptName, toast } from '../app.js';
import { t, tx, fmtTime, fmtSpan } from '../i18n.js';
import { subscribe } from '../live.js';
import { esc, formData, options, qs } from '../util.js';
import { urlFilters } from '../util.js';

const STATES = ['listed', 'rectifying', 'review', 'closed'];

export function timeLeft(h) {
  if (h.state === 'closed') return `<span class="muted">${esc(t('hazard.closedat', { at: fmtTime(h.closed_at, 'short') }))}</span>`;
  const left = Date.parse(h.deadline) - Date.now();
  if (h.overdue || left < 0) return `<span class="overdue">${esc(t('hazard.overdue', { span: fmtSpan(-left) }))}</span>`;
  return esc(t('hazard.left', { span: fmtSpan(left) }));
}
export const hazardHead = () => `<thead><tr><th scope="col">#</th><th scope="col">${esc(t('col.site'))}</th><th scope="col">${esc(t('hazard.titlef'))}</th><th scope="col">${esc(t('hazard.level'))}</th><th scope="col">${esc(t('col.state'))}</th><th scope="col">${esc(t('hazard.deadline'))}</th><th scope="col">${esc(t('hazard.timeleft'))}</th><th scope="col">${esc(t('hazard.source'))}</th></tr></thead>`;
export const hazardRows = (list) => list.map((h) => `<tr class="${esc(h.state)}" data-id="${esc(h.id)}">
  <td><a href="/hazards/${encodeURIComponent(h.id)}">${esc(h.id)}</a></td><td><a href="/sites/${encodeURIComponent(h.site)}">${esc(h.site)}</a> ${esc(siteName(h.site))}</td>
  <td><a href="/hazards/${encodeURIComponent(h.id)}">${esc(h.title)}</a></td><td>${h.level === 'major' ? '<strong>' : ''}${esc(tx('level', h.level))}${h.level === 'major' ? '</strong>' : ''}</td>
  <td>${esc(tx('hstate', h.state))}</td><td class="small">${esc(fmtTime(h.deadline, 'short'))}</td><td>${timeLeft(h)}</td><td>${esc(tx('source', h.source))}</td></tr>`).join('')
  || `<tr><td colspan="8" class="muted">${esc(t('hazards.none'))}</td></tr>`;

export async function render(el) {
  document.title = `${t('nav.hazards')} · ${t('app.name')}`;
  const f = urlFilters({ state: '', level: '', source: '', overdue: '', street: '', sector: '', site: '' });
  const sites = [...ctx.sites.values()];
  const sectors = [...new Set(sites.map((s) => s.sector))];
  const streets = [...new Set(sites.map((s) => s.street))];
  const mayFile = can.write() || can.site();
  el.innerHTML = `<h1>${esc(t('hazards.title'))} <span class="count" id="hazard-count"></span></h1>
    <form class="filters" id="hazard-filters" role="search" aria-label="${esc(t('filters'))}">
      <label>${esc(t('f.state'))}<select name="state">${options(STATES.map((s) => [s, tx('hstate', s)]), f.state, t('all'))}</select></label>
      <label>${esc(t('hazard.level'))}<select name="level">${options([['general', tx('level', 'general')], ['major', tx('level', 'major')]], f.level, t('all'))}</select></label>
      <label>${esc(t('hazard.source'))}<select name="source">${options(['alert', 'self_report', 'inspection'].map((s) => [s, tx('source', s)]), f.source, t('all'))}</select></label>
      <label>${esc(t('hazard.overduef'))}<select name="overdue">${options([['true', t('yes')], ['false', t('no')]], f.overdue, t('all'))}</select></label>
      <label>${esc(t('f.street'))}<select name="street">${options(streets.map((s) => [s, streetName(s)]), f.street, t('all'))}</select></label>
      <label>${esc(t('f.sector'))}<select name="sector">${options(sectors.map((s) => [s, deptName(s)]), f.sector, t('all'))}</select></label>
      <label>${esc(t('f.site'))}<select name="site">${options(sites.map((s) => [s.id, `${s.id} ${s.name}`]), f.site, t('all'))}</select></label>
    </form>
    <table id="hazard-ledger">${hazardHead()}<tbody></tbody></table>
    ${mayFile ? `<section class="card"><h2 id="file-hazard">${esc(t('hazards.file'))}</h2>
      <form id="hazard-new" class="grid" aria-labelledby="file-hazard">
        <label>${esc(t('f.site'))}<select name="site" required>${options(sites.map((s) => [s.id, `${s.id} ${s.name}`]), '')}</select></label>
        <label>${esc(t('hazard.level'))}<select name="level">${options([['general', tx('level', 'general')], ['major', tx('level', 'major')]], 'general')}</select></label>
        <label>${esc(t('hazard.source'))}<select name="source">${options(can.site() ? [['self_report', tx('source', 'self_report')]] : [['inspection', tx('source', 'inspection')]], '')}</select></label>
        <label class="wide">${esc(t('hazard.titlef'))}<input name="title" required maxlength="200"></label>
        <label class="wide">${esc(t('hazard.description'))}<textarea name="description" required></textarea></label>
        <div><button class="primary" type="submit">${esc(t('hazards.filebutton'))}</button></div>
      </form></section>` : ''}`;
  const tbody = el.querySelector('tbody');
  let alive = true;
  let loads = 0;  // reloads may overlap (filters, live events): only the latest answer is shown
  async function load() {
    const mine = ++loads;
    const q = Object.fromEntries(Object.entries(f).filter(([, v]) => v));
    const list = await get(`/hazards${qs({ ...q, limit: 500 })}`);
    if (!alive || mine !== loads) return;
    el.querySelector('#hazard-count').textContent = t('hazards.count', { n: list.length });
    tbody.innerHTML = hazardRows(list);
  }
  await load();
  el.querySelector('#hazard-filters').addEventListener('change', (e) => {
    f[e.target.name] = e.target.value;
    history.replaceState(null, '', `/hazards${qs(f)}`);
    load().catch(failed);
  });
  el.querySelector('#hazard-new')?.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const h = await post('/hazards', formData(e.target));
      toast(t('hazards.filed', { id: h.id }));
      go(`/hazards/${encodeURIComponent(h.id)}`);
    } catch (err) { failed(err); }
  });
  const off = subscribe((msg) => { if (msg.hazard) load().catch(failed); });
  return () => { alive = false; off(); };
}
