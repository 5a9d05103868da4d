// The department's subscriptions (/subscriptions): list, add (webhook or MQTT), delete.
import { api, get, post } from '../api.js';
import { ctx, can, failed, deptName, toast } from '../app.js';
import { t, tx, fmtTime } from '../i18n.js';
import { esc, formData, options, SEVERITIES } from '../util.js';

export async function render(el) {
  document.title = `${t('nav.subscriptions')} · ${t('app.name')}`;
  const draw = async () => {
    const list = await get('/subscriptions');
    el.innerHTML = `<h1>${esc(t('subs.title'))}</h1>
      <table id="subscriptions"><thead><tr><th scope="col">${esc(t('subs.department'))}</th><th scope="col">${esc(t('subs.channel'))}</th><th scope="col">${esc(t('subs.url'))}</th><th scope="col">${esc(t('subs.min'))}</th><th scope="col">${esc(t('subs.filters'))}</th><th scope="col">${esc(t('subs.created'))}</th>${can.write() ? '<th scope="col"></th>' : ''}</tr></thead>
      <tbody>${list.map((s) => `<tr><td>${esc(deptName(s.department))}</td><td>${esc(s.channel)}</td><td><code>${esc(s.url)}</code></td><td><span class="sev sev-${s.min_severity}">${esc(tx('sev', s.min_severity))}</span></td>
        <td class="small">${esc([...s.families.map((x) => tx('family', x)), ...s.streets, ...s.sites].join(', ') || t('all'))}</td><td class="small">${esc(fmtTime(s.created_at, 'short'))}</td>
        ${can.write() ? `<td><button type="button" data-del="${esc(s.id)}" aria-label="${esc(t('subs.delete', { url: s.url }))}">${esc(t('delete'))}</button></td>` : ''}</tr>`).join('') || `<tr><td colspan="7" class="muted">${esc(t('none'))}</td></tr>`}</tbody></table>
      ${can.write() ? `<section class="card"><h2 id="sub-new-h">${esc(t('subs.add'))}</h2><form id="sub-new" class="grid" aria-labelledby="sub-new-h">
        ${can.admin() ? `<label>${esc(t('subs.department'))}<select name="department" required>${options([...ctx.departments.values()].map((d) => [d.id, d.name]), '')}</select></label>` : ''}
        <label>${esc(t('subs.channel'))}<select name="channel">${options([['webhook', 'webhook'], ['mqtt', 'MQTT']], 'webhook')}</select></label>
        <label class="wide">${esc(t('subs.url'))}<input name="url" required maxlength="2048"></label>
        <label>${esc(t('subs.secret'))}<input name="secret" type="password" autocomplete="new-password"></label>
        <label>${esc(t('subs.min'))}<select name="min_severity">${options(SEVERITIES.map((s) => [s, tx('sev', s)]), 'yellow')}</select></label>
        <div><button class="primary" type="submit">${esc(t('add'))}</button></div></form></section>` : ''}`;
    el.querySelector('#sub-new')?.addEventListener('submit', async (e) => {
      e.preventDefault();
      try { await post('/subscriptions', formData(e.target)); toast(t('saved')); await draw(); } catch (err) { failed(err); }
    });
    el.querySelector('tbody').addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-del]');
      if (!b) return;
      try { await api('DELETE', `/subscriptions/${encodeURIComponent(b.dataset.del)}`); toast(t('deleted')); await draw(); } catch (err) { failed(err); }
    });
  };
  await draw();
}
