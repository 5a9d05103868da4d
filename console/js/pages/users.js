// Accounts (/users, admins only): list, add, change role, disable or enable, set a password.
import { api, get, post } from '../api.js';
import { ctx, failed, deptName, toast } from '../app.js';
import { t } from '../i18n.js';
import { esc, formData, options } from '../util.js';

const ROLES = ['viewer', 'operator', 'admin', 'site'];

export async function render(el) {
  document.title = `${t('nav.users')} · ${t('app.name')}`;
  const draw = async () => {
    const list = await get('/users');
    el.innerHTML = `<h1>${esc(t('users.title'))}</h1>
      <table id="users"><thead><tr><th scope="col">${esc(t('signin.username'))}</th><th scope="col">${esc(t('users.role'))}</th><th scope="col">${esc(t('subs.department'))}</th><th scope="col">${esc(t('users.sites'))}</th><th scope="col">${esc(t('users.status'))}</th><th scope="col">${esc(t('users.actions'))}</th></tr></thead>
      <tbody>${list.map((u) => `<tr data-user="${esc(u.username)}"><td>${esc(u.username)}</td>
        <td><select data-role aria-label="${esc(t('users.rolefor', { name: u.username }))}">${options(ROLES.map((r) => [r, t(`role.${r}`)]), u.role)}</select></td>
        <td>${esc(u.department ? deptName(u.department) : '—')}</td><td class="small">${esc((u.sites || []).join(', '))}</td>
        <td>${u.disabled ? `<span class="overdue">${esc(t('users.disabled'))}</span>` : esc(t('users.active'))}</td>
        <td><button type="button" data-toggle="${u.disabled ? 'enable' : 'disable'}">${esc(t(u.disabled ? 'users.enable' : 'users.disable'))}</button>
          <button type="button" data-passwd>${esc(t('users.passwd'))}</button></td></tr>`).join('')}</tbody></table>
      <section class="card"><h2 id="user-new-h">${esc(t('users.add'))}</h2><form id="user-new" class="grid" aria-labelledby="user-new-h">
        <label>${esc(t('signin.username'))}<input name="username" required maxlength="64" autocomplete="off"></label>
        <label>${esc(t('users.role'))}<select name="role">${options(ROLES.map((r) => [r, t(`role.${r}`)]), 'viewer')}</select></label>
        <label>${esc(t('subs.department'))}<select name="department">${options([...ctx.departments.values()].map((d) => [d.id, d.name]), '', '—')}</select></label>
        <label>${esc(t('users.sitesf'))}<input name="sites" placeholder="GS-001,GS-002"></label>
        <label>${esc(t('signin.password'))}<input name="password" type="password" minlength="10" required autocomplete="new-password"></label>
        <div><button class="primary" type="submit">${esc(t('add'))}</button></div></form></section>`;
    el.querySelector('#user-new').addEventListener('submit', async (e) => {
      e.preventDefault();
      const v = formData(e.target);
      const body = { username: v.username, role: v.role, password: v.password, department: v.department || null,
        sites: v.sites ? v.sites.split(',').map((s) => s.trim()).filter(Boolean) : [] };
      try { await post('/users', body); toast(t('saved')); await draw(); } catch (err) { failed(err); }
    });
    const patch = async (name, body) => {
      try { await api('PATCH', `/users/${encodeURIComponent(name)}`, body); toast(t('saved')); await draw(); } catch (err) { failed(err); }
    };
    el.querySelector('#users tbody').addEventListener('change', (e) => {
      if (e.target.matches('select[data-role]')) patch(e.target.closest('tr').dataset.user, { role: e.target.value });
    });
    el.querySelector('#users tbody').addEventListener('click', (e) => {
      const tr = e.target.closest('tr'); if (!tr) return;
      if (e.target.matches('button[data-toggle]')) patch(tr.dataset.user, { disabled: e.target.dataset.toggle === 'disable' });
      if (e.target.matches('button[data-passwd]')) {
        const pw = prompt(t('users.newpasswd', { name: tr.dataset.user }));
        if (pw) patch(tr.dataset.user, { password: pw });
      }
    });
  };
  await draw();
}
