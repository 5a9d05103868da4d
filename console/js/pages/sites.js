// The sites the caller may see (/sites), each linking to its page.
import { ctx, streetName, deptName } from '../app.js';
import { t, tx } from '../i18n.js';
import { esc } from '../util.js';

export async function render(el) {
  document.title = `${t('nav.sites')} · ${t('app.name')}`;
  const sites = [...ctx.sites.values()];
  el.innerHTML = `<h1>${esc(t('nav.sites'))} <span class="count">${esc(t('sites.count', { n: sites.length }))}</span></h1>
    <table><thead><tr><th scope="col">${esc(t('col.site'))}</th><th scope="col">${esc(t('f.family'))}</th><th scope="col">${esc(t('f.street'))}</th><th scope="col">${esc(t('f.sector'))}</th></tr></thead>
    <tbody>${sites.map((s) => `<tr><td><a href="/sites/${encodeURIComponent(s.id)}">${esc(s.id)}</a> ${esc(s.name)}</td><td>${esc(tx('family', s.family))}</td><td>${esc(streetName(s.street))}</td><td>${esc(deptName(s.sector))}</td></tr>`).join('')}</tbody></table>`;
}
