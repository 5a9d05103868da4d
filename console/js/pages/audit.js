// The audit trail (/audit, admins only): newest first, filtered by actor, action and time (since
// midnight of the chosen day in the district's zone, as the reports count days).
import { get } from '../api.js';
import { failed } from '../app.js';
import { t, fmtTime, zoneOffset } from '../i18n.js';
import { esc, formData, qs } from '../util.js';

export async function render(el) {
  document.title = `${t('nav.audit')} · ${t('app.name')}`;
  el.innerHTML = `<h1>${esc(t('audit.title'))}</h1>
    <form class="filters" id="audit-filters"><label>${esc(t('audit.actor'))}<input name="actor"></label>
      <label>${esc(t('audit.action'))}<input name="action"></label>
      <label>${esc(t('audit.since'))}<input name="since" type="date"></label>
      <button type="submit">${esc(t('reports.show'))}</button></form>
    <table id="audit"><thead><tr>${['at', 'actor', 'role', 'department', 'action', 'target', 'detail', 'ip'].map((c) => `<th scope="col">${esc(t(`audit.${c}`))}</th>`).join('')}</tr></thead><tbody></tbody></table>`;
  const form = el.querySelector('#audit-filters');
  async function load() {
    const v = formData(form);
    const rows = await get(`/audit${qs({ actor: v.actor, action: v.action, since: v.since ? `${v.since}T00:00:00${zoneOffset(Date.parse(`${v.since}T12:00:00Z`))}` : '', limit: 500 })}`);
    el.querySelector('tbody').innerHTML = rows.map((r) => `<tr><td class="small">${esc(fmtTime(r.at))}</td><td>${esc(r.actor)}</td><td>${esc(r.role)}</td><td>${esc(r.department)}</td><td>${esc(r.action)}</td><td>${esc(r.target)}</td><td class="small">${esc(typeof r.detail === 'object' && r.detail !== null ? JSON.stringify(r.detail) : r.detail)}</td><td class="small">${esc(r.ip)}</td></tr>`).join('')
      || `<tr><td colspan="8" class="muted">${esc(t('none'))}</td></tr>`;
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load().catch(failed); });
  await load();
}
