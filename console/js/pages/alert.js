// One alert (/alerts/{id}): message, departments, the events timeline with who and note,
// Acknowledge and Close with a Note, and the chart of its metric around it.
import { get, post, maybe } from '../api.js';
import { ctx, can, failed, siteName, deptName, toast, unitOf } from '../app.js';
import { t, tx, fmtTime, fmtSpan } from '../i18n.js';
import { subscribe } from '../live.js';
import { chartSvg } from '../chart.js';
import { esc, fmtNum, isNewer, qs } from '../util.js';

export async function render(el, id) {
  let alert = await get(`/alerts/${encodeURIComponent(id)}`);
  let alive = true;
  const [rules, siteHazards] = (await Promise.all([maybe(`/rules${qs({ family: alert.family })}`),
    maybe(`/hazards${qs({ site: alert.site, limit: 200 })}`)])).map((x) => x || []);
  // an alert listed as a hazard (挂账) is closed by that hazard's verification, not by itself
  const hazardOf = () => siteHazards.find((h) => (h.alert_ids || []).map(String).includes(String(alert.id)));
  // The page is built once: the note field and its buttons stay (with what is being typed) while
  // the facts, the timeline and the buttons' states follow the alert.
  el.innerHTML = `<h1 id="alert-h"></h1>
    <div class="row"><section class="card" aria-labelledby="alert-facts"><h2 id="alert-facts">${esc(t('alert.facts'))}</h2>
        <div id="alert-summary"></div>
        ${can.write() ? `<form id="alert-actions" class="grid" aria-label="${esc(t('alert.actions'))}">
          <label class="wide">${esc(t('alert.note'))}<textarea name="note" id="alert-note" maxlength="4000"></textarea></label>
          <div><button type="button" class="primary" id="ack">${esc(t('alert.ack'))}</button>
          <button type="button" id="close">${esc(t('alert.close'))}</button>
          <p class="small muted" id="closed-by-hazard" hidden>${esc(t('alert.closedbyhazard'))}</p></div></form>` : ''}
      </section>
      <section class="card" aria-labelledby="alert-timeline"><h2 id="alert-timeline">${esc(t('alert.timeline'))}</h2><ol class="timeline" id="alert-events"></ol></section></div>
    <section class="card" aria-labelledby="alert-chart"><h2 id="alert-chart">${esc(t('alert.chart'))}</h2><div id="chart-box" class="loading">${esc(t('loading'))}</div></section>`;
  let charted = null;  // what the chart was drawn for: its span and severity
  let charts = 0;  // chart requests: only the latest may draw
  let busy = false;  // a move is being sent: one at a time
  const draw = async () => {
    if (!alive) return;
    const a = alert;
    document.title = `${a.site} ${a.rule} · ${t('app.name')}`;
    const unit = unitOf(a.family, a.metric);
    const end = a.closed_at || a.resolved_at;
    const hz = hazardOf();
    el.querySelector('#alert-h').innerHTML = `${esc(t('alert.title', { id: a.id }))} — <span class="sev sev-${a.severity}">${esc(tx('sev', a.severity))}</span>`;
    el.querySelector('#alert-summary').innerHTML = `<p>${esc(a.message)}</p>
        <dl class="kv">
          <dt>${esc(t('col.site'))}</dt><dd><a href="/sites/${encodeURIComponent(a.site)}">${esc(a.site)}</a> ${esc(siteName(a.site))}</dd>
          <dt>${esc(t('col.rule'))}</dt><dd>${esc(a.rule)} (${esc(tx('kind', a.kind))})</dd>
          <dt>${esc(t('col.metric'))}</dt><dd>${esc(tx('metric', a.metric))} <span class="muted">${esc(a.metric)}</span></dd>
          <dt>${esc(t('col.device'))}</dt><dd>${esc(a.device)}</dd>
          <dt>${esc(t('col.value'))}</dt><dd>${fmtNum(a.value)}${a.threshold !== null ? ` / ${fmtNum(a.threshold)}` : ''} ${esc(unit)}</dd>
          <dt>${esc(t('col.state'))}</dt><dd id="alert-state">${esc(tx('state', a.state))}</dd>
          <dt>${esc(t('col.started'))}</dt><dd>${esc(fmtTime(a.started_at))}</dd>
          <dt>${esc(t('col.open'))}</dt><dd>${esc(fmtSpan((end ? Date.parse(end) : Date.now()) - Date.parse(a.started_at)))}</dd>
          <dt>${esc(t('alert.departments'))}</dt><dd>${esc(a.departments.map((d) => deptName(d)).join(t('list.sep'))) || '—'}</dd>
          ${hz ? `<dt>${esc(t('alert.hazard'))}</dt><dd><a href="/hazards/${encodeURIComponent(hz.id)}">${esc(t('hazard.title', { id: hz.id }))}</a> ${esc(tx('hstate', hz.state))}</dd>` : ''}
        </dl>`;
    setButtons();
    el.querySelector('#alert-events').innerHTML = a.events.map((e) => `<li><div class="when">${esc(fmtTime(e.at))}</div>
          <strong>${esc(tx('event', e.type))}</strong> <span class="sev sev-${e.severity}">${esc(tx('sev', e.severity))}</span>
          ${e.value !== null && e.value !== undefined ? ` ${fmtNum(e.value)} ${esc(unit)}` : ''}
          ${e.by ? `<div>${esc(t('alert.by'))}: ${esc(e.by)}</div>` : ''}${e.note ? `<div>${esc(t('alert.notelabel'))}: ${esc(e.note)}</div>` : ''}</li>`).join('');
    const key = JSON.stringify([a.severity, a.resolved_at, a.closed_at]);
    if (key !== charted) { charted = key; await drawChart(); }
  };
  function setButtons() {
    const ack = el.querySelector('#ack');
    if (!ack) return;
    const hz = hazardOf();
    const byHazard = Boolean(hz && hz.state !== 'closed');
    ack.disabled = busy || alert.state !== 'open';
    el.querySelector('#close').disabled = busy || alert.state === 'closed' || byHazard;
    el.querySelector('#closed-by-hazard').hidden = !byHazard;
  }
  // An alert is shown only if it is later than the one shown (answers and live refetches race).
  const apply = (a) => {
    if (!alive || !isNewer(a, alert)) return;
    alert = a;
    draw().catch(failed);
  };
  async function act(what) {
    busy = true;
    setButtons();
    const note = el.querySelector('#alert-note').value.trim();
    try {
      const answer = await post(`/alerts/${encodeURIComponent(alert.id)}/${what}`, note ? { note } : {});
      el.querySelector('#alert-note').value = '';
      toast(t(what === 'ack' ? 'alert.acked' : 'alert.closed'));
      apply(answer);  // the alert after the change, with all its events
    } catch (err) { failed(err); } finally { busy = false; setButtons(); }
  }
  el.querySelector('#ack')?.addEventListener('click', () => act('ack'));
  el.querySelector('#close')?.addEventListener('click', () => act('close'));
  async function drawChart() {
    const a = alert;
    const mine = ++charts;
    const start = Date.parse(a.started_at) - 30 * 60e3;
    const stop = Math.min(Date.now(), (a.closed_at || a.resolved_at) ? Date.parse(a.closed_at || a.resolved_at) + 30 * 60e3 : Date.now());
    const span = stop - start;
    const every = span <= 2 * 3600e3 ? '1m' : span <= 48 * 3600e3 ? '10m' : '1h';
    const box = el.querySelector('#chart-box');
    if (!alive || !box) return;
    if (a.kind === 'deadman' || !a.metric || a.metric === '*') { box.textContent = t('alert.nochart'); box.className = 'muted'; return; }
    try {
      const h = await get(`/history${qs({ site: a.site, metric: a.metric, start: new Date(start).toISOString(), end: new Date(stop).toISOString(), every, agg: 'max' })}`);
      const rule = rules.find((r) => r.kind === 'threshold' && r.metric === a.metric) || null;
      if (!alive || !box.isConnected || mine !== charts) return;
      box.className = '';
      box.innerHTML = `<figure class="chart"><figcaption>${esc(tx('metric', a.metric))} (${esc(a.metric)})</figcaption>${chartSvg({
        metric: a.metric, unit: unitOf(a.family, a.metric), start, end: stop, points: h.points, rule,
        spans: [{ from: Date.parse(a.started_at), to: a.resolved_at ? Date.parse(a.resolved_at) : null, severity: a.severity, label: a.rule }],
      })}</figure>`;
    } catch (err) { box.textContent = err.detail || String(err); box.className = 'muted'; }
  }
  await draw();
  const off = subscribe((msg) => {
    if (msg.alert && String(msg.alert.id) === String(alert.id)) get(`/alerts/${encodeURIComponent(alert.id)}`).then(apply).catch(failed);
  });
  return () => { alive = false; off(); };
}
