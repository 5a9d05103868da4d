// The department's silences (/silences): notifications held back for a site until a time.
import { api, get, post } from '../api.js';
import { ctx, can, failed, siteName, deptName, toast } from '../app.js';
import { t, tx, fmtTime } from '../i18n.js';
import { esc, formData, options } from '../util.js';

const FOR = [['1h', 3600e3], ['4h', 4 * 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3]];

export async function render(el) {
  document.title = `${t('nav.silences')} · ${t('app.name')}`;
  const draw = async () => {
    const list = await get('/silences');
    el.innerHTML = `<h1>${esc(t('silences.title'))}</h1>
      <table id="silences"><thead><tr><th scope="col">${esc(t('col.site'))}</th><th scope="col">${esc(t('col.metric'))}</th><th scope="col">${esc(t('silences.until'))}</th><th scope="col">${esc(t('silences.reason'))}</th><th scope="col">${esc(t('subs.department'))}</th><th scope="col">${esc(t('silences.by'))}</th>${can.write() ? '<th scope="col"></th>' : ''}</tr></thead>
      <tbody>${list.map((s) => `<tr><td>${esc(s.site)} ${esc(siteName(s.site))}</td><td>${esc(s.metric ? tx('metric', s.metric) : t('all'))}</td><td>${esc(fmtTime(s.until, 'short'))}</td><td>${esc(s.reason)}</td><td>${esc(s.department ? deptName(s.department) : t('all'))}</td><td>${esc(s.created_by)}</td>
        ${can.write() ? `<td><button type="button" data-del="${esc(s.id)}" aria-label="${esc(t('silences.delete', { site: s.site }))}">${esc(t('delete'))}</button></td>` : ''}</tr>`).join('') || `<tr><td colspan="7" class="muted">${esc(t('none'))}</td></tr>`}</tbody></table>
      ${can.write() ? `<section class="card"><h2 id="sil-new-h">${esc(t('silences.add'))}</h2><form id="sil-new" class="grid" aria-labelledby="sil-new-h">
        <label>${esc(t('col.site'))}<select name="site" required>${options([...ctx.sites.values()].map((s) => [s.id, `${s.id} ${s.name}`]), '')}</select></label>
        <label>${esc(t('silences.for'))}<select name="for">${options(FOR.map(([k]) => [k, t(`range.${k}`)]), '1h')}</select></label>
        <label class="wide">${esc(t('silences.reason'))}<input name="reason" maxlength="2000"></label>
        <div><button class="primary" type="submit">${esc(t('add'))}</button></div></form></section>` : ''}`;
    el.querySelector('#sil-new')?.addEventListener('submit', async (e) => {
      e.preventDefault();
      const v = formData(e.target);
      const ms = Object.fromEntries(FOR)[v.for];
      const body = { site: v.site, metric: null, until: new Date(Date.now() + ms).toISOString(), reason: v.reason };
      try { await post('/silences', body); toast(t('saved')); await draw(); } catch (err) { failed(err); }
    });
    el.querySelector('tbody').addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-del]');
      if (!b) return;
      try { await api('DELETE', `/silences/${encodeURIComponent(b.dataset.del)}`); toast(t('deleted')); await draw(); } catch (err) { failed(err); }
    });
  };
  await draw();
}
