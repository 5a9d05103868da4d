// One hazard (/hazards/{id}): state, deadline, the timeline; the five-essentials plan (五到位),
// progress notes, attachments (upload, view), submit for review, verify or reject.
import { api, get, post } from '../api.js';
import { ctx, can, failed, siteName, deptName, toast } from '../app.js';
import { t, tx, fmtTime, zoneOffset, zoneDate } from '../i18n.js';
import { subscribe } from '../live.js';
import { esc, formData } from '../util.js';
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
  const draw = () => {
    if (!alive) return;
    // a live redraw keeps what is being typed in every form (file inputs cannot be refilled)
    const typed = [...el.querySelectorAll('form textarea, form input:not([type=file])')].map((x) => [x.form.id, x.name, x.value]);
    render_();
    for (const [form, name, value] of typed) {
      const x = el.querySelector(`#${form} [name="${name}"]`);
      if (x && value) x.value = value;
    }
    bind();
  };
  const render_ = () => {
    document.title = `${t('hazard.title', { id: h.id })} · ${t('app.name')}`;
    const worker = can.write() || can.site();
    const verifier = can.admin() || (can.write() && me.department === h.sector);
    const plan = h.plan || null;
    el.innerHTML = `<h1>${esc(t('hazard.title', { id: h.id }))}: ${esc(h.title)}</h1>
      <div class="row"><section class="card"><h2>${esc(t('alert.facts'))}</h2><dl class="kv">
        <dt>${esc(t('col.state'))}</dt><dd id="hazard-state"><strong>${esc(tx('hstate', h.state))}</strong> <span class="muted small">${esc(h.state)}</span></dd>
        <dt>${esc(t('hazard.level'))}</dt><dd>${esc(tx('level', h.level))}</dd>
        <dt>${esc(t('col.site'))}</dt><dd><a href="/sites/${encodeURIComponent(h.site)}">${esc(h.site)}</a> ${esc(siteName(h.site))}</dd>
        <dt>${esc(t('hazard.source'))}</dt><dd>${esc(tx('source', h.source))}${(h.alert_ids || []).map((a) => ` <a href="/alerts/${encodeURIComponent(a)}">#${esc(a)}</a>`).join('')}</dd>
        <dt>${esc(t('hazard.listed'))}</dt><dd>${esc(fmtTime(h.listed_at))}</dd>
        <dt>${esc(t('hazard.deadline'))}</dt><dd>${esc(fmtTime(h.deadline))} — ${timeLeft(h)}</dd>
        <dt>${esc(t('alert.departments'))}</dt><dd>${(h.departments || []).map((d) => esc(deptName(d))).join('、')}</dd>
        <dt>${esc(t('hazard.description'))}</dt><dd>${esc(h.description)}</dd>
      </dl>
      ${plan ? `<h2>${esc(t('hazard.plan'))}</h2><dl class="kv">${PLAN.map((k) => `<dt>${esc(t(`plan.${k}`))}</dt><dd>${esc(k === 'deadline' ? fmtTime(plan[k]) : plan[k])}</dd>`).join('')}</dl>` : ''}
      </section>
      <section class="card"><h2>${esc(t('alert.timeline'))}</h2><ol class="timeline" id="hazard-timeline">${(h.events || []).map((e) => `<li><div class="when">${esc(fmtTime(e.at))}</div>
        <strong>${esc(tx('hevent', e.type))}</strong>${e.by ? ` · ${esc(e.by)}` : ''}${e.note && !e.attachment ? `<div>${esc(e.note)}</div>` : ''}${attachmentLink(h, e.attachment, e.note)}</li>`).join('')}</ol></section></div>
      ${worker && ['listed', 'rectifying'].includes(h.state) ? `<section class="card"><h2 id="plan-h">${esc(t('hazard.planform'))}</h2>
        <form id="plan-form" class="grid" aria-labelledby="plan-h">
          ${PLAN.map((k) => (k === 'deadline'
            ? `<label>${esc(t(`plan.${k}`))}<input type="date" name="deadline" required value="${esc(zoneDate(Math.min(Date.parse(h.deadline), Date.now() + 3 * 86400e3)))}" max="${esc(zoneDate(Date.parse(h.deadline)))}"></label>`
            : `<label class="${k === 'measures' || k === 'contingency' ? 'wide' : ''}">${esc(t(`plan.${k}`))}${k === 'measures' || k === 'contingency' ? `<textarea name="${k}" required>${esc(plan?.[k] || '')}</textarea>` : `<input name="${k}" required value="${esc(plan?.[k] || '')}">`}</label>`)).join('')}
          <div><button class="primary" type="submit">${esc(t('hazard.fileplan'))}</button></div></form></section>` : ''}
      ${worker && h.state === 'rectifying' ? `<section class="card"><h2 id="prog-h">${esc(t('hazard.progress'))}</h2>
        <form id="progress-form" class="grid" aria-labelledby="prog-h"><label class="wide">${esc(t('hazard.progressnote'))}<textarea name="note" required></textarea></label>
          <div><button type="submit">${esc(t('hazard.addprogress'))}</button></div></form>
        <form id="attach-form" class="grid"><label>${esc(t('hazard.upload'))}<input type="file" name="file" accept="image/jpeg,image/png,application/pdf" required></label>
          <div><button type="submit">${esc(t('hazard.uploadbutton'))}</button></div></form>
        <form id="submit-form" class="grid"><label class="wide">${esc(t('hazard.submitnote'))}<textarea name="note"></textarea></label>
          <div><button class="primary" type="submit">${esc(t('hazard.submit'))}</button></div></form></section>` : ''}
      ${verifier && h.state === 'review' ? `<section class="card"><h2 id="verify-h">${esc(t('hazard.verify'))}</h2>
        <form id="verify-form" class="grid" aria-labelledby="verify-h"><label class="wide">${esc(t('hazard.verifynote'))}<textarea name="note" required></textarea></label>
          <div><button class="primary" type="submit" value="accept">${esc(t('hazard.accept'))}</button> <button class="danger" type="submit" value="reject">${esc(t('hazard.reject'))}</button></div></form></section>` : ''}`;
  };
  const act = async (path, body, form) => {
    try {
      await post(`/hazards/${encodeURIComponent(h.id)}/${path}`, body);
      form?.reset();
      h = await get(`/hazards/${encodeURIComponent(h.id)}`);
      toast(t('saved'));
      draw();
    } catch (err) { failed(err); }
  };
  function bind() {
    el.querySelector('#plan-form')?.addEventListener('submit', (e) => {
      e.preventDefault();
      const body = formData(e.target);
      // end of the chosen day in the district's zone, never past the hazard's own deadline
      const endOfDay = Date.parse(`${body.deadline}T23:59:00${zoneOffset(Date.parse(h.deadline))}`);
      body.deadline = new Date(Math.min(endOfDay, Date.parse(h.deadline))).toISOString();
      act('plan', body, e.target);
    });
    el.querySelector('#progress-form')?.addEventListener('submit', (e) => { e.preventDefault(); act('progress', formData(e.target), e.target); });
    el.querySelector('#submit-form')?.addEventListener('submit', (e) => { e.preventDefault(); act('submit', formData(e.target), e.target); });
    el.querySelector('#verify-form')?.addEventListener('submit', (e) => {
      e.preventDefault();
      act('verify', { accept: e.submitter?.value === 'accept', note: formData(e.target).note }, e.target);
    });
    el.querySelector('#attach-form')?.addEventListener('submit', async (e) => {
      e.preventDefault();
      const data = new FormData(e.target);
      try {
        const att = await api('POST', `/hazards/${encodeURIComponent(h.id)}/attachments`, data, { form: true });
        toast(t('hazard.uploaded', { name: att.name }));
        h = await get(`/hazards/${encodeURIComponent(h.id)}`);
        draw();
      } catch (err) { failed(err); }
    });
  }
  draw();
  const off = subscribe((msg) => {
    if (msg.hazard && String(msg.hazard.id) === String(h.id) && msg.hazard.updated_at !== h.updated_at) get(`/hazards/${encodeURIComponent(h.id)}`).then((x) => {
      if (x.updated_at !== h.updated_at || x.events.length !== h.events.length) { h = x; draw(); }  // only a real change redraws
    }).catch(failed);
  });
  return () => { alive = false; off(); };
}
