// One site (/sites/{id}): latest values with units and rule levels, a history chart per metric
// (1 h, 24 h, 7 d, 30 d) with level bands, alert spans and the trend forecast; its alerts,
// hazards and credit.
import { get, maybe } from '../api.js';
import { ctx, streetName, deptName, unitOf } from '../app.js';
import { t, tx, fmtTime } from '../i18n.js';
import { chartSvg } from '../chart.js';
import { esc, fmtNum, qs } from '../util.js';
import { hazardRows, hazardHead } from './hazards.js';
import { creditCard } from './credit.js';

// range → [length in ms, aggregation window]
const RANGES = { '1h': [3600e3, '1m'], '24h': [86400e3, '15m'], '7d': [7 * 86400e3, '1h'], '30d': [30 * 86400e3, '6h'] };

export async function render(el, id) {
  const [site, rules, alerts, hazards, credit] = await Promise.all([
    get(`/sites/${encodeURIComponent(id)}`), maybe(`/rules${qs({ family: ctx.sites.get(id)?.family })}`),
    get(`/alerts${qs({ site: id, limit: 200 })}`), maybe(`/hazards${qs({ site: id, limit: 100 })}`),
    maybe(`/sites/${encodeURIComponent(id)}/credit`)]);
  document.title = `${site.id} ${site.name} · ${t('app.name')}`;
  const allRules = rules || [];
  const metrics = Object.keys(ctx.district.families?.[site.family] || site.latest);
  const ruleOf = (m) => allRules.find((r) => r.kind === 'threshold' && r.metric === m) || null;
  const levelsText = (m) => allRules.filter((r) => r.metric === m && r.kind === 'threshold').map((r) =>
    Object.entries(r.levels).map(([sev, v]) => `<span class="sev sev-${sev}">${esc(tx('sev', sev))} ${r.direction === 'below' ? '≤' : '≥'} ${fmtNum(v)}</span>`).join(' ')).join('<br>') || '—';
  let range = localStorage.getItem('safewatch.range') || '1h';
  if (!RANGES[range]) range = '1h';
  el.innerHTML = `<h1>${esc(site.id)} ${esc(site.name)}</h1>
    <p class="muted">${esc(tx('family', site.family))} · ${esc(streetName(site.street))} · ${esc(deptName(site.sector))}${site.address ? ` · ${esc(site.address)}` : ''}</p>
    <div class="row"><section class="card"><h2>${esc(t('site.latest'))}</h2>
      <table><thead><tr><th scope="col">${esc(t('col.metric'))}</th><th scope="col">${esc(t('col.latest'))}</th><th scope="col">${esc(t('col.time'))}</th><th scope="col">${esc(t('site.levels'))}</th></tr></thead>
      <tbody>${metrics.map((m) => { const l = site.latest[m]; return `<tr><td>${esc(tx('metric', m))} <span class="muted small">${esc(m)}</span></td>
        <td>${l ? `${fmtNum(l.value)} ${esc(unitOf(site.family, m))}` : '—'}</td><td class="small">${l ? esc(fmtTime(l.time)) : ''}</td><td class="small">${levelsText(m)}</td></tr>`; }).join('')}</tbody></table>
    </section>
    ${credit ? creditCard(credit) : ''}</div>
    <section class="card"><h2>${esc(t('site.history'))}</h2>
      <div class="ranges" role="group" aria-label="${esc(t('site.range'))}">${Object.keys(RANGES).map((r) => `<button type="button" data-range="${r}" aria-pressed="${r === range}">${esc(t(`range.${r}`))}</button>`).join('')}</div>
      <div class="charts" id="charts"></div></section>
    <section class="card"><h2>${esc(t('site.alerts'))}</h2><table><thead><tr><th scope="col">${esc(t('col.rule'))}</th><th scope="col">${esc(t('col.severity'))}</th><th scope="col">${esc(t('col.state'))}</th><th scope="col">${esc(t('col.value'))}</th><th scope="col">${esc(t('col.started'))}</th></tr></thead>
      <tbody>${alerts.map((a) => `<tr><td><a href="/alerts/${encodeURIComponent(a.id)}">${esc(a.rule)}</a> <span class="muted small">${esc(a.metric)}</span></td><td><span class="sev sev-${a.severity}">${esc(tx('sev', a.severity))}</span></td><td>${esc(tx('state', a.state))}</td><td>${fmtNum(a.value)}</td><td class="small">${esc(fmtTime(a.started_at, 'short'))}</td></tr>`).join('') || `<tr><td colspan="5" class="muted">${esc(t('alerts.none'))}</td></tr>`}</tbody></table></section>
    ${hazards ? `<section class="card"><h2>${esc(t('site.hazards'))}</h2><table>${hazardHead()}<tbody>${hazardRows(hazards)}</tbody></table></section>` : ''}`;

  const chartable = metrics.filter((m) => !ctx.district.families?.[site.family]?.[m]?.binary || site.latest[m]);
  async function drawCharts() {
    const [len, every] = RANGES[range];
    const end = Date.now(); const start = end - len;
    const box = el.querySelector('#charts');
    box.innerHTML = chartable.map((m) => `<figure class="chart" id="chart-${esc(m)}" aria-label="${esc(t('chart.of', { metric: m }))}"><figcaption>${esc(tx('metric', m))} <span class="muted small">${esc(m)} ${esc(unitOf(site.family, m))}</span></figcaption><p class="loading">${esc(t('loading'))}</p></figure>`).join('');
    await Promise.all(chartable.map(async (m) => {
      const rule = ruleOf(m);
      const agg = rule ? (rule.direction === 'below' ? 'min' : 'max') : 'mean';
      const fig = box.querySelector(`#chart-${CSS.escape(m)}`);
      try {
        const [h, trend] = await Promise.all([
          get(`/history${qs({ site: site.id, metric: m, start: new Date(start).toISOString(), end: new Date(end).toISOString(), every, agg })}`),
          rule && site.latest[m] ? maybe(`/trend${qs({ site: site.id, metric: m })}`).catch(() => null) : null]);
        const spans = alerts.filter((a) => a.metric === m).map((a) => ({ from: Date.parse(a.started_at), to: a.resolved_at ? Date.parse(a.resolved_at) : null, severity: a.severity, label: a.rule }));
        const last = trend && trend.last_time ? { time: Date.parse(trend.last_time), value: trend.last } : null;
        const eta = (trend?.forecast || []).filter((f) => f.eta);
        fig.innerHTML = `<figcaption>${esc(tx('metric', m))} <span class="muted small">${esc(m)} ${esc(unitOf(site.family, m))}</span></figcaption>${chartSvg({
          metric: m, unit: unitOf(site.family, m), start, end, points: h.points, rule, spans, forecast: last ? eta : [], last })}
          ${trend && trend.slope_per_min !== null ? `<p class="small muted">${esc(t('site.trend', { slope: fmtNum(trend.slope_per_min), unit: unitOf(site.family, m) }))}${eta.map((f) => ` · <span class="sev sev-${f.level}">${esc(tx('sev', f.level))}</span> ${esc(t('chart.eta', { time: fmtTime(f.eta, 'short') }))}`).join('')}</p>` : ''}`;
      } catch (err) { fig.innerHTML += `<p class="muted">${esc(err.detail || String(err))}</p>`; fig.querySelector('.loading')?.remove(); }
    }));
  }
  el.querySelector('.ranges').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-range]');
    if (!b) return;
    range = b.dataset.range;
    localStorage.setItem('safewatch.range', range);
    for (const x of el.querySelectorAll('.ranges button')) x.setAttribute('aria-pressed', String(x.dataset.range === range));
    drawCharts();
  });
  await drawCharts();
}
