// The sign-in form (contract section 11: fields "Username" and "Password", button "Sign in").
import { api, ApiError } from '../api.js';
import { t } from '../i18n.js';
import { esc } from '../util.js';

export function renderSignIn(el, done) {
  document.title = t('app.name');
  el.innerHTML = `<section class="signin card">
    <h1>${esc(t('signin.title'))}</h1>
    <form id="signin-form">
      <label>${esc(t('signin.username'))}<input name="username" autocomplete="username" required></label>
      <label>${esc(t('signin.password'))}<input name="password" type="password" autocomplete="current-password" required></label>
      <p id="signin-error" role="alert" class="overdue"></p>
      <button class="primary" type="submit">${esc(t('signin.submit'))}</button>
    </form></section>`;
  const form = el.querySelector('#signin-form');
  form.username.focus();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const err = el.querySelector('#signin-error');
    err.textContent = '';
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const me = await api('POST', '/session', { username: form.username.value.trim(), password: form.password.value },
        { quiet401: true });
      await done(me);
    } catch (ex) {
      err.textContent = ex instanceof ApiError
        ? (ex.status === 429 ? t('signin.locked') : ex.status === 401 ? t('signin.wrong') : ex.detail) : String(ex);
      button.disabled = false;
    }
  });
}
