// The hazards report (/reports) by street or sector, with CSV and XLSX downloads.
import { get } from '../api.js';
import { failed, streetName, deptName } from '../app.js';
import { t, zoneDate, zoneOffset } from '../i18n.js';
import { esc, formData, options, qs } from '../util.js';

const COLS = ['listed', 'closed', 'open', 'overdue', 'median_days_to_close'];

export async function render(el) {
  document.title = `${t('nav.reports')} · ${t('app.name')}`;
  const now = Date.now();
  const f = { start: zoneDate(now - 30 * 86400e3), end: zoneDate(now), by: 'street' };
  el.innerHTML = `<h1>${esc(t('reports.title'))}</h1>
    <form class="filters" id="report-form">
      <label>${esc(t('reports.start'))}<input type="date" name="start" value="${f.start}" required></label>
      <label>${esc(t('reports.end'))}<input type="date" name="end" value="${f.end}" required></label>
      <label>${esc(t('reports.by'))}<select name="by">${options([['street', t('f.street')], ['sector', t('f.sector')]], f.by)}</select></label>
      <button type="submit" class="primary">${esc(t('reports.show'))}</button>
      <span id="downloads"></span>
    </form><div id="report"></div>`;
  const form = el.querySelector('#report-form');
  const params = () => {
    const v = formData(form);
    const off = zoneOffset(Date.now());
    return { start: `${v.start}T00:00:00${off}`, end: `${v.end}T23:59:59${off}`, by: v.by };
  };
  async function load() {
    const p = params();
    const rows = await get(`/reports/hazards${qs({ ...p, format: 'json' })}`);
    const name = (g) => (g === 'total' || g === null ? t('reports.total') : p.by === 'street' ? streetName(g) : deptName(g));
    el.querySelector('#downloads').innerHTML = ['csv', 'xlsx'].map((fmt) => `<a href="/api/v1/reports/hazards${esc(qs({ ...p, format: fmt }))}" download>${esc(t(`reports.${fmt}`))}</a>`).join(' · ');
    el.querySelector('#report').innerHTML = `<table id="report-table"><thead><tr><th scope="col">${esc(t(p.by === 'street' ? 'f.street' : 'f.sector'))}</th>${COLS.map((c) => `<th scope="col">${esc(t(`reports.${c}`))}</th>`).join('')}</tr></thead>
      <tbody>${(Array.isArray(rows) ? rows : rows.rows || []).map((r) => `<tr><th scope="row">${esc(name(r.group))}</th>${COLS.map((c) => `<td>${esc(r[c] ?? '—')}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load().catch(failed); });
  await load();
}
