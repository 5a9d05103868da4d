// Safety credit (/credit): every site's score and grade, worst first, the warning list (grade D),
// and one site's factors (/credit/{site}).
import { get } from '../api.js';
import { ctx, failed, siteName, streetName, deptName } from '../app.js';
import { t, tx } from '../i18n.js';
import { esc, options, qs } from '../util.js';
import { urlFilters } from '../util.js';

// A factor's detail from its numbers ("3 red alerts × 5" → count 3, weight 5) in the page's language;
// a detail of another shape is shown as the API gives it.
function factorDetail(f) {
  const m = String(f.detail || '').match(/^(\d+(?:\.\d+)?)\s.*×\s*(-?\d+(?:\.\d+)?)\s*$/);
  return m ? t('credit.calc', { n: m[1], w: m[2] }) : f.detail;
}

export const creditCard = (c) => `<section class="card" id="credit"><h2>${esc(t('credit.of'))}</h2>
  <p><strong class="grade grade-${esc(c.grade)}">${esc(t('credit.grade', { grade: c.grade }))}</strong> · ${esc(t('credit.score', { score: c.score }))} <span class="muted small">(${esc(/^\d+d$/.test(c.window) ? t('credit.window', { n: parseInt(c.window, 10) }) : c.window)})</span></p>
  <table><thead><tr><th scope="col">${esc(t('credit.factor'))}</th><th scope="col">${esc(t('credit.points'))}</th><th scope="col">${esc(t('credit.detail'))}</th></tr></thead>
  <tbody>${(c.factors || []).map((f) => `<tr><td>${esc(tx('credit.f', f.name))}</td><td>${esc(f.points)}</td><td>${esc(factorDetail(f))}</td></tr>`).join('') || `<tr><td colspan="3" class="muted">${esc(t('credit.nofactors'))}</td></tr>`}</tbody></table></section>`;

export async function render(el, site) {
  document.title = `${t('nav.credit')} · ${t('app.name')}`;
  if (site) {
    const c = await get(`/sites/${encodeURIComponent(site)}/credit`);
    el.innerHTML = `<h1><a href="/sites/${encodeURIComponent(site)}">${esc(site)}</a> ${esc(siteName(site))}</h1>${creditCard(c)}<p><a href="/credit">${esc(t('credit.back'))}</a></p>`;
    return;
  }
  const f = urlFilters({ grade: '', street: '', sector: '' });
  const sites = [...ctx.sites.values()];
  el.innerHTML = `<h1>${esc(t('credit.title'))}</h1>
    <form class="filters" id="credit-filters">
      <label>${esc(t('credit.gradef'))}<select name="grade">${options(['A', 'B', 'C', 'D'].map((g) => [g, g]), f.grade, t('all'))}</select></label>
      <label>${esc(t('f.street'))}<select name="street">${options([...new Set(sites.map((s) => s.street))].map((s) => [s, streetName(s)]), f.street, t('all'))}</select></label>
      <label>${esc(t('f.sector'))}<select name="sector">${options([...new Set(sites.map((s) => s.sector))].map((s) => [s, deptName(s)]), f.sector, t('all'))}</select></label>
      <a href="/credit?grade=D">${esc(t('credit.warning'))}</a>
    </form><table id="credit-table"><thead><tr><th scope="col">${esc(t('col.site'))}</th><th scope="col">${esc(t('credit.gradef'))}</th><th scope="col">${esc(t('credit.scoref'))}</th></tr></thead><tbody></tbody></table>`;
  async function load() {
    const list = await get(`/credit${qs(f)}`);
    el.querySelector('tbody').innerHTML = list.map((c) => `<tr><td><a href="/credit/${encodeURIComponent(c.site)}">${esc(c.site)}</a> ${esc(siteName(c.site))}</td><td><strong>${esc(c.grade)}</strong></td><td>${esc(c.score)}</td></tr>`).join('')
      || `<tr><td colspan="3" class="muted">${esc(t('credit.none'))}</td></tr>`;
  }
  el.querySelector('#credit-filters').addEventListener('change', (e) => { f[e.target.name] = e.target.value; history.replaceState(null, '', `/credit${qs(f)}`); load().catch(failed); });
  await load();
}
