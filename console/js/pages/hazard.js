// One hazard (/hazards/{id}): state, deadline, the timeline; the five-essentials plan (五到位),
// progress notes, attachments (upload, view), submit for review, verify or reject.
import { api, get, post } from '../api.js';
import { ctx, can, failed, siteName, deptName, toast } from '../app.js';
import { t, tx, fmtTime, zoneOffset, zoneDate } from '../i18n.js';
import { subscribe } from '../live.js';
import { esc, formData, isNewer } from '../util.js';
import { timeLeft } from './hazards.js';

const PLAN = ['measures', 'owner', 'funds', 'deadline', 'contingency'];

function attachmentLink(h, att, note) {
  if (att === null || att === undefined || att === '') return '';
  const id = typeof att === 'object' ? att.id : att;
  const name = typeof att === 'object' ? (att.name || att.id) : (note || att);  // the event's note is the file name
  return `<div>${esc(t('hazard.attachment'))}: <a href="/api/v1/hazards/${encodeURIComponent(h.id)}/attachments/${encodeURIComponent(id)}" target="_blank" rel="noopener">${esc(name)}</a></div>`;
}

export async function render(el, id) {
  let h = await get(`/hazards/${encodeURIComponent(id)}`);
  const me = ctx.me;
  let alive = true;
  let formsKey = null;  // [state, who may act] the forms were built for
  const worker = () => can.write() || can.site();
  const verifier = () => can.admin() || (can.write() && me.department === h.sector);
  el.innerHTML = `<h1 id="hazard-h"></h1>
    <div class="row"><section class="card" id="hazard-summary"></section>
      <section class="card"><h2>${esc(t('alert.timeline'))}</h2><ol class="timeline" id="hazard-timeline"></ol></section></div>
    <div id="hazard-forms"></div>`;

  // The summary and the timeline are redrawn on every change; the forms only when the state or who
  // may act changes, so a live event never takes away what is being typed (or the focus).
  const draw = () => {
    if (!alive) return;
    document.title = `${t('hazard.title', { id: h.id })} · ${t('app.name')}`;
    el.querySelector('#hazard-h').textContent = `${t('hazard.title', { id: h.id })}: ${h.title}`;
    const plan = h.plan || null;
    const state = tx('hstate', h.state);
    el.querySelector('#hazard-summary').innerHTML = `<h2>${esc(t('alert.facts'))}</h2><dl class="kv">
        <dt>${esc(t('col.state'))}</dt><dd id="hazard-state"><strong>${esc(state)}</strong>${state !== h.state ? ` <span class="muted small">${esc(h.state)}</span>` : ''}</dd>
        <dt>${esc(t('hazard.level'))}</dt><dd>${esc(tx('level', h.level))}</dd>
        <dt>${esc(t('col.site'))}</dt><dd><a href="/sites/${encodeURIComponent(h.site)}">${esc(h.site)}</a> ${esc(siteName(h.site))}</dd>
        <dt>${esc(t('hazard.source'))}</dt><dd>${esc(tx('source', h.source))}${(h.alert_ids || []).map((a) => ` <a href="/alerts/${encodeURIComponent(a)}">#${esc(a)}</a>`).join('')}</dd>
        <dt>${esc(t('hazard.listed'))}</dt><dd>${esc(fmtTime(h.listed_at))}</dd>
        <dt>${esc(t('hazard.deadline'))}</dt><dd>${esc(fmtTime(h.deadline))} — ${timeLeft(h)}</dd>
        <dt>${esc(t('alert.departments'))}</dt><dd>${esc((h.departments || []).map((d) => deptName(d)).join(t('list.sep'))) || '—'}</dd>
        <dt>${esc(t('hazard.description'))}</dt><dd>${esc(h.description)}</dd>
      </dl>
      ${plan ? `<h2>${esc(t('hazard.plan'))}</h2><dl class="kv">${PLAN.map((k) => `<dt>${esc(t(`plan.${k}`))}</dt><dd>${esc(k === 'deadline' ? fmtTime(plan[k]) : plan[k])}</dd>`).join('')}</dl>` : ''}`;
    el.querySelector('#hazard-timeline').innerHTML = (h.events || []).map((e) => `<li><div class="when">${esc(fmtTime(e.at))}</div>
        <strong>${esc(tx('hevent', e.type))}</strong>${e.by ? ` · ${esc(e.by)}` : ''}${e.note && !e.attachment ? `<div>${esc(e.note)}</div>` : ''}${attachmentLink(h, e.attachment, e.note)}</li>`).join('');
    const key = JSON.stringify([h.state, worker(), verifier()]);
    if (key !== formsKey) { formsKey = key; drawForms(); }
  };
  const drawForms = () => {
    const plan = h.plan || null;
    const box = el.querySelector('#hazard-forms');
    box.innerHTML = `${worker() && ['listed', 'rectifying'].includes(h.state) ? `<section class="card"><h2 id="plan-h">${esc(t('hazard.planform'))}</h2>
        <form id="plan-form" class="grid" aria-labelledby="plan-h">
          ${PLAN.map((k) => (k === 'deadline'
            ? `<label>${esc(t(`plan.${k}`))}<input type="date" name="deadline" required value="${esc(zoneDate(Math.min(Date.parse(h.deadline), Date.now() + 3 * 86400e3)))}" max="${esc(zoneDate(Date.parse(h.deadline)))}"></label>`
            : `<label class="${k === 'measures' || k === 'contingency' ? 'wide' : ''}">${esc(t(`plan.${k}`))}${k === 'measures' || k === 'contingency' ? `<textarea name="${k}" required>${esc(plan?.[k] || '')}</textarea>` : `<input name="${k}" required value="${esc(plan?.[k] || '')}">`}</label>`)).join('')}
          <div><button class="primary" type="submit">${esc(t('hazard.fileplan'))}</button></div></form></section>` : ''}
      ${worker() && h.state === 'rectifying' ? `<section class="card"><h2 id="prog-h">${esc(t('hazard.progress'))}</h2>
        <form id="progress-form" class="grid" aria-labelledby="prog-h"><label class="wide">${esc(t('hazard.progressnote'))}<textarea name="note" required></textarea></label>
          <div><button type="submit">${esc(t('hazard.addprogress'))}</button></div></form>
        <form id="attach-form" class="grid"><label>${esc(t('hazard.upload'))}<input type="file" name="file" accept="image/jpeg,image/png,application/pdf" required></label>
          <div><button type="submit">${esc(t('hazard.uploadbutton'))}</button></div></form>
        <form id="submit-form" class="grid"><label class="wide">${esc(t('hazard.submitnote'))}<textarea name="note"></textarea></label>
          <div><button class="primary" type="submit">${esc(t('hazard.submit'))}</button></div></form></section>` : ''}
      ${verifier() && h.state === 'review' ? `<section class="card"><h2 id="verify-h">${esc(t('hazard.verify'))}</h2>
        <form id="verify-form" class="grid" aria-labelledby="verify-h"><label class="wide">${esc(t('hazard.verifynote'))}<textarea name="note" required></textarea></label>
          <div><button class="primary" type="submit" value="accept">${esc(t('hazard.accept'))}</button> <button class="danger" type="submit" value="reject">${esc(t('hazard.reject'))}</button></div></form></section>` : ''}`;
    bind(box);
  };
  // A hazard is shown only if it is later than the one shown: answers and live refetches may
  // arrive in any order, and an older one must never replace a newer one.
  const apply = (x) => {
    if (!alive || !isNewer(x, h)) return;
    h = x;
    draw();
  };
  const refetch = () => get(`/hazards/${encodeURIComponent(h.id)}`).then(apply);
  // One move: its buttons are off while it is sent; on success the form it came from (found by
  // id, it may have been redrawn meanwhile) is emptied and the answer (the hazard after the move) shown.
  const act = async (formId, send, done = t('saved')) => {
    const form = el.querySelector(`#${formId}`);
    const buttons = form ? [...form.querySelectorAll('button')] : [];
    for (const b of buttons) b.disabled = true;
    try {
      const answer = await send();
      el.querySelector(`#${formId}`)?.reset();
      toast(typeof done === 'function' ? done(answer) : done);
      if (answer && answer.events) apply(answer); else await refetch();
    } catch (err) { failed(err); } finally { for (const b of buttons) b.disabled = false; }
  };
  const move = (path, body) => () => post(`/hazards/${encodeURIComponent(h.id)}/${path}`, body);
  function bind(box) {
    box.querySelector('#plan-form')?.addEventListener('submit', (e) => {
      e.preventDefault();
      const body = formData(e.currentTarget);
      // end of the chosen day in the district's zone, never past the hazard's own deadline
      const endOfDay = Date.parse(`${body.deadline}T23:59:00${zoneOffset(Date.parse(h.deadline))}`);
      body.deadline = new Date(Math.min(endOfDay, Date.parse(h.deadline))).toISOString();
      act('plan-form', move('plan', body));
    });
    box.querySelector('#progress-form')?.addEventListener('submit', (e) => { e.preventDefault(); act('progress-form', move('progress', formData(e.currentTarget))); });
    box.querySelector('#submit-form')?.addEventListener('submit', (e) => { e.preventDefault(); act('submit-form', move('submit', formData(e.currentTarget))); });
    box.querySelector('#verify-form')?.addEventListener('submit', (e) => {
      e.preventDefault();
      act('verify-form', move('verify', { accept: e.submitter?.value === 'accept', note: formData(e.currentTarget).note }));
    });
    box.querySelector('#attach-form')?.addEventListener('submit', (e) => {
      e.preventDefault();
      const data = new FormData(e.currentTarget);
      // the answer is the attachment, not the hazard: the hazard is fetched again after it
      act('attach-form', () => api('POST', `/hazards/${encodeURIComponent(h.id)}/attachments`, data, { form: true }),
        (att) => t('hazard.uploaded', { name: att.name }));
    });
  }
  draw();
  const off = subscribe((msg) => {
    if (msg.hazard && String(msg.hazard.id) === String(h.id) && isNewer(msg.hazard, h)) refetch().catch(failed);
  });
  return () => { alive = false; off(); };
}
