// The alert board (/alerts): every open, acknowledged and resolved alert, worst and newest first,
// filtered in the browser, kept current from the SSE stream; bulk acknowledge. Rows are drawn in
// one innerHTML pass per frame, so 1,000 alerts stay fast.
import { get, post } from '../api.js';
import { ctx, can, failed, siteName, streetName, deptName, toast, unitOf } from '../app.js';
import { t, tx, fmtSpan, fmtTime } from '../i18n.js';
import { subscribe } from '../live.js';
import { esc, fmtNum, options, qs, SEVERITIES, sevRank } from '../util.js';
import { urlFilters } from '../util.js';

const ACTIVE = ['open', 'acknowledged', 'resolved'];

export async function render(el) {
  document.title = `${t('nav.alerts')} · ${t('app.name')}`;
  const f = urlFilters({ state: '', severity: '', family: '', street: '', sector: '', site: '' });
  const alerts = new Map();
  const escalatedSeen = new Set();
  const selected = new Set();
  const sectors = [...new Set([...ctx.sites.values()].map((s) => s.sector))];
  const streets = [...new Set([...ctx.sites.values()].map((s) => s.street))];
  // the district's families (GET /district), and any a site has that it does not name
  const families = [...new Set([...Object.keys(ctx.district?.families || {}), ...[...ctx.sites.values()].map((s) => s.family)])];
  el.innerHTML = `<h1>${esc(t('alerts.title'))} <span class="count" id="alert-count"></span></h1>
    <form class="filters" id="alert-filters" role="search" aria-label="${esc(t('filters'))}">
      <label>${esc(t('f.state'))}<select name="state">${options([['', t('state.active')], ...[...ACTIVE, 'closed'].map((s) => [s, tx('state', s)])], f.state)}</select></label>
      <label>${esc(t('f.severity'))}<select name="severity">${options(SEVERITIES.map((s) => [s, t('f.atleast', { sev: tx('sev', s) })]), f.severity, t('all'))}</select></label>
      <label>${esc(t('f.family'))}<select name="family">${options(families.map((s) => [s, tx('family', s)]), f.family, t('all'))}</select></label>
      <label>${esc(t('f.street'))}<select name="street">${options(streets.map((s) => [s, streetName(s)]), f.street, t('all'))}</select></label>
      <label>${esc(t('f.sector'))}<select name="sector">${options(sectors.map((s) => [s, deptName(s)]), f.sector, t('all'))}</select></label>
      <label>${esc(t('f.site'))}<select name="site">${options([...ctx.sites.values()].map((s) => [s.id, `${s.id} ${s.name}`]), f.site, t('all'))}</select></label>
      ${can.write() ? `<button type="button" id="bulk-ack" disabled>${esc(t('alerts.bulkack'))}</button>` : ''}
    </form>
    <table id="alert-board" aria-describedby="alert-count">
      <thead><tr>${can.write() ? `<th scope="col"><input type="checkbox" id="select-all" aria-label="${esc(t('alerts.selectall'))}"></th>` : ''}
        <th scope="col">${esc(t('col.site'))}</th><th scope="col">${esc(t('col.rule'))}</th><th scope="col">${esc(t('col.severity'))}</th>
        <th scope="col">${esc(t('col.value'))}</th><th scope="col">${esc(t('col.state'))}</th><th scope="col">${esc(t('col.open'))}</th>
        <th scope="col">${esc(t('col.escalated'))}</th><th scope="col">${esc(t('col.started'))}</th></tr></thead>
      <tbody></tbody></table>`;
  const tbody = el.querySelector('tbody');
  const form = el.querySelector('#alert-filters');

  const escalated = (a) => {
    if (escalatedSeen.has(a.id)) return true;
    if (a.state !== 'open') return false;
    // The list has no events: an open alert past an escalation step's wait has been reported up.
    const age = Date.now() - a.t0;
    return (ctx.district.escalation || []).some((s) => sevRank(a.severity) >= sevRank(s.severity_at_least) && age >= s.unacknowledged_for_s * 1000);
  };
  const visible = () => [...alerts.values()].filter((a) => {
    const site = ctx.sites.get(a.site);
    if (f.state ? a.state !== f.state : !ACTIVE.includes(a.state)) return false;
    if (f.severity && sevRank(a.severity) < sevRank(f.severity)) return false;
    if (f.family && a.family !== f.family) return false;
    if (f.street && (a.street || site?.street) !== f.street) return false;
    if (f.sector && site?.sector !== f.sector) return false;
    return !(f.site && a.site !== f.site);
  }).sort((a, b) => sevRank(b.severity) - sevRank(a.severity) || b.t0 - a.t0);

  let queued = false;
  let alive = true;  // false once the page is left: a late frame or answer must not touch the next page
  const draw = () => {
    queued = false;
    if (!alive) return;
    const rows = visible();
    const now = Date.now();
    el.querySelector('#alert-count').textContent = t('alerts.count', { n: rows.length });
    tbody.innerHTML = rows.length ? rows.map((a) => {
      const end = a.closed_at || a.resolved_at;
      const unit = unitOf(a.family, a.metric);
      const esc_ = escalated(a);
      return `<tr class="${a.state} sev-row-${a.severity}" data-id="${esc(a.id)}">
        ${can.write() ? `<td><input type="checkbox" class="pick" value="${esc(a.id)}"${selected.has(a.id) ? ' checked' : ''}${a.state !== 'open' ? ' disabled' : ''} aria-label="${esc(t('alerts.select', { id: a.id }))}"></td>` : ''}
        <td><a href="/sites/${encodeURIComponent(a.site)}">${esc(a.site)}</a> ${esc(siteName(a.site))}</td>
        <td><a href="/alerts/${encodeURIComponent(a.id)}">${esc(a.rule)}</a><div class="small muted">${esc(tx('metric', a.metric))}</div></td>
        <td><span class="sev sev-${a.severity}">${esc(tx('sev', a.severity))}</span></td>
        <td>${fmtNum(a.value)}${a.threshold !== null ? ` / ${fmtNum(a.threshold)}` : ''} ${esc(unit)}</td>
        <td>${esc(tx('state', a.state))}</td>
        <td>${esc(fmtSpan((end ? Date.parse(end) : now) - a.t0))}</td>
        <td>${esc_ ? `<span class="esc">⇧ ${esc(t('alerts.escalated'))}</span>` : ''}</td>
        <td class="small">${esc(fmtTime(a.started_at, 'short'))}</td></tr>`;
    }).join('') : `<tr><td colspan="9" class="muted">${esc(t('alerts.none'))}</td></tr>`;
    const bulk = el.querySelector('#bulk-ack');
    if (bulk) bulk.disabled = selected.size === 0;
    performance.mark('alerts-drawn');  // for measuring the board (tests/console/test_board_load.py)
  };
  const redraw = () => { if (!queued) { queued = true; requestAnimationFrame(draw); } };

  // Live events and loads race: the stream is listened to before the first load, what arrives
  // while a load is under way is kept and merged over its answer, and of two versions of an
  // alert the later (updated_at) stays. Only the latest of overlapping loads is applied.
  const put = (a) => {
    const was = alerts.get(a.id);
    if (was && Date.parse(was.updated_at) > Date.parse(a.updated_at)) return;  // a late, older version
    alerts.set(a.id, { ...a, events: [], t0: Date.parse(a.started_at) });
  };
  let buffer = null;  // alerts that arrived live while a load is under way
  let loads = 0;
  async function load() {
    const mine = ++loads;
    if (!buffer) buffer = [];
    const states = f.state ? [f.state] : ACTIVE;
    const lists = await Promise.all(states.map((s) => get(`/alerts${qs({ state: s, limit: s === 'closed' ? 300 : 1000 })}`)));
    if (!alive || mine !== loads) return;
    alerts.clear();
    for (const list of lists) for (const a of list) put(a);
    for (const a of buffer) put(a);
    buffer = null;
    draw();
  }
  const off = subscribe((msg) => {
    if (!msg.alert) return;
    const a = msg.alert;
    if (msg.type === 'escalated') escalatedSeen.add(a.id);
    if (buffer) buffer.push(a);
    put(a);
    redraw();
  });
  try { await load(); } catch (err) { off(); throw err; }

  form.addEventListener('change', async (e) => {
    if (e.target.name in f) {
      const was = f.state;
      f[e.target.name] = e.target.value;
      history.replaceState(null, '', `/alerts${qs(f)}`);
      if (f.state !== was && (f.state === 'closed' || was === 'closed')) await load().catch(failed); else draw();
    }
  });
  tbody.addEventListener('change', (e) => {
    if (!e.target.classList.contains('pick')) return;
    if (e.target.checked) selected.add(e.target.value); else selected.delete(e.target.value);
    redraw();
  });
  el.querySelector('#select-all')?.addEventListener('change', (e) => {
    selected.clear();
    if (e.target.checked) for (const a of visible()) if (a.state === 'open') selected.add(a.id);
    redraw();
  });
  el.querySelector('#bulk-ack')?.addEventListener('click', async () => {
    const ids = [...selected];
    const results = await Promise.allSettled(ids.map((id) => post(`/alerts/${encodeURIComponent(id)}/ack`, { note: t('alerts.bulknote') })));
    let ok = 0;
    results.forEach((r) => { if (r.status === 'fulfilled') { ok += 1; put(r.value); } });
    selected.clear();
    el.querySelector('#select-all').checked = false;
    toast(t('alerts.bulkdone', { ok, n: ids.length }), ok < ids.length);
    redraw();
  });

  const tick = setInterval(redraw, 30000);  // "open for" keeps counting
  return () => { alive = false; off(); clearInterval(tick); };
}
