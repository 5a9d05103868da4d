// The situation board (/map): an SVG map of the sites from their coordinates, each coloured by
// its worst open severity (and saying it in text), streets labelled; sites without a location sit
// with their street. Beside it the 条块 matrix: streets × sectors, open alerts and unclosed hazards.
import { get, maybe } from '../api.js';
import { ctx, failed, streetName, deptName } from '../app.js';
import { t, tx } from '../i18n.js';
import { subscribe } from '../live.js';
import { esc, qs, worst, SEVERITIES } from '../util.js';

const COLOURS = { blue: '#1f6feb', yellow: '#e0b000', orange: '#e8720c', red: '#c81e1e' };
const W = 760; const H = 520; const PAD = 48;

// Places every site: located ones by lat/lon; the others on a ring around their street's centre,
// or, for a street with no located site at all, in a row of its own along the bottom.
export function layout(sites) {
  const located = sites.filter((s) => s.location);
  const lats = located.map((s) => s.location.lat); const lons = located.map((s) => s.location.lon);
  const [la0, la1] = lats.length ? [Math.min(...lats), Math.max(...lats)] : [0, 1];
  const [lo0, lo1] = lons.length ? [Math.min(...lons), Math.max(...lons)] : [0, 1];
  const k = Math.cos((((la0 + la1) / 2) * Math.PI) / 180);  // metres per degree of longitude shrink with latitude
  const spanX = Math.max((lo1 - lo0) * k, 1e-4); const spanY = Math.max(la1 - la0, 1e-4);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD - 70) / spanY);
  const pos = new Map();
  for (const s of located) pos.set(s.id, [PAD + (s.location.lon - lo0) * k * scale, PAD + (la1 - s.location.lat) * scale]);
  const byStreet = new Map();
  for (const s of sites) { if (!byStreet.has(s.street)) byStreet.set(s.street, []); byStreet.get(s.street).push(s); }
  let row = 0;
  for (const [street, list] of byStreet) {
    const placed = list.filter((s) => pos.has(s.id)).map((s) => pos.get(s.id));
    const rest = list.filter((s) => !pos.has(s.id));
    if (!rest.length) continue;
    if (placed.length) {
      const cx = placed.reduce((a, p) => a + p[0], 0) / placed.length; const cy = placed.reduce((a, p) => a + p[1], 0) / placed.length;
      rest.forEach((s, i) => { const a = (2 * Math.PI * i) / rest.length; const r = 26 + 4 * Math.floor(i / 12); pos.set(s.id, [cx + r * Math.cos(a), cy + r * Math.sin(a)]); });
    } else {
      const y = H - 24 - 22 * row; row += 1;
      rest.forEach((s, i) => pos.set(s.id, [PAD + 90 + (i % 30) * 20, y]));
      pos.set(`street:${street}`, [PAD, y]);
    }
  }
  return pos;
}

export async function render(el) {
  document.title = `${t('nav.map')} · ${t('app.name')}`;
  let alerts = []; let hazards = [];
  async function load() {
    const [o, a, hz] = await Promise.all([get(`/alerts${qs({ state: 'open', limit: 1000 })}`), get(`/alerts${qs({ state: 'acknowledged', limit: 1000 })}`), maybe(`/hazards${qs({ limit: 1000 })}`)]);
    alerts = [...o, ...a];
    hazards = (hz || []).filter((h) => h.state !== 'closed');
  }
  await load();
  const sites = [...ctx.sites.values()];
  const pos = layout(sites);
  const draw = () => {
    const worstOf = new Map();
    for (const a of alerts) worstOf.set(a.site, worst([worstOf.get(a.site), a.severity].filter(Boolean)));
    const streets = [...new Set(sites.map((s) => s.street))];
    const sectors = [...new Set(sites.map((s) => s.sector))];
    // street labels at the top-left of their sites' box
    const labels = streets.map((st) => {
      const ps = sites.filter((s) => s.street === st).map((s) => pos.get(s.id));
      const own = pos.get(`street:${st}`);
      const x0 = Math.min(...ps.map((p) => p[0])) - 14; const y0 = Math.min(...ps.map((p) => p[1])) - 14;
      const x1 = Math.max(...ps.map((p) => p[0])) + 14; const y1 = Math.max(...ps.map((p) => p[1])) + 14;
      return `<g class="street"><rect x="${x0.toFixed(1)}" y="${y0.toFixed(1)}" width="${(x1 - x0).toFixed(1)}" height="${(y1 - y0).toFixed(1)}" rx="10" fill="none" stroke="#9aa5b1" stroke-dasharray="4 3"/>
        <text x="${(own ? own[0] : x0 + 4).toFixed(1)}" y="${(own ? own[1] + 4 : y0 - 4).toFixed(1)}" font-size="14" font-weight="600" fill="#334">${esc(streetName(st))}</text></g>`;
    }).join('');
    const dots = sites.map((s) => {
      const [x, y] = pos.get(s.id); const sev = worstOf.get(s.id);
      const label = `${s.id} ${s.name}: ${sev ? tx('sev', sev) : t('map.calm')}`;
      return `<a href="/sites/${encodeURIComponent(s.id)}" aria-label="${esc(label)}"><g class="site"><title>${esc(label)}</title>
        <circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${sev ? 8 : 6}" fill="${sev ? COLOURS[sev] : '#c4cbd3'}" stroke="#1b1f24" stroke-width="${s.location ? 1 : 0.6}" ${s.location ? '' : 'stroke-dasharray="2 1.5"'}/>
        <text x="${(x + 10).toFixed(1)}" y="${(y + 4).toFixed(1)}" font-size="12" fill="#1b1f24"${sev ? ' font-weight="700"' : ''}>${esc(s.id)}${sev ? ` ${esc(tx('sev', sev))}` : ''}</text></g></a>`;
    }).join('');
    // the drawing's own extent (plus room for labels), so a tall or narrow district fills the frame
    const all = [...pos.values()];
    const bx0 = Math.min(...all.map((p) => p[0])) - 40; const by0 = Math.min(...all.map((p) => p[1])) - 40;
    const bx1 = Math.max(...all.map((p) => p[0])) + 120; const by1 = Math.max(...all.map((p) => p[1])) + 30;
    const box = `${bx0.toFixed(0)} ${by0.toFixed(0)} ${Math.max(300, bx1 - bx0).toFixed(0)} ${Math.max(200, by1 - by0).toFixed(0)}`;
    const cell = (st, sec) => {
      const ids = new Set(sites.filter((s) => s.street === st && s.sector === sec).map((s) => s.id));
      if (!ids.size) return '<td class="cell muted">·</td>';
      const as = alerts.filter((a) => ids.has(a.site)); const hs = hazards.filter((h) => ids.has(h.site));
      const w = worst(as.map((a) => a.severity));
      return `<td class="cell${w ? ` bg-${w}` : ''}"><span title="${esc(t('map.alerts'))}">${esc(t('map.cellalerts', { n: as.length }))}</span><br><span>${esc(t('map.cellhazards', { n: hs.length }))}</span>${w ? `<br><span class="small">${esc(tx('sev', w))}</span>` : ''}</td>`;
    };
    el.innerHTML = `<h1>${esc(t('map.title'))}</h1><div class="row">
      <section class="card map-wrap"><h2>${esc(t('map.map'))}</h2>
        <svg viewBox="${box}" role="img" aria-label="${esc(t('map.aria', { n: sites.length }))}">${labels}${dots}</svg>
        <div class="legend">${SEVERITIES.map((s) => `<span class="sev sev-${s}">${esc(tx('sev', s))}</span>`).join('')}<span class="muted">○ ${esc(t('map.calm'))}</span><span class="muted">${esc(t('map.nolocation'))}</span></div></section>
      <section class="card"><h2>${esc(t('map.matrix'))}</h2><table id="matrix"><thead><tr><th scope="col">${esc(t('f.street'))} \\ ${esc(t('f.sector'))}</th>${sectors.map((s) => `<th scope="col">${esc(deptName(s))}</th>`).join('')}</tr></thead>
        <tbody>${streets.map((st) => `<tr><th scope="row">${esc(streetName(st))}</th>${sectors.map((sec) => cell(st, sec)).join('')}</tr>`).join('')}</tbody></table></section></div>`;
  };
  draw();
  let pending = null;
  const off = subscribe(() => { clearTimeout(pending); pending = setTimeout(() => load().then(draw).catch(failed), 500); });
  return () => { off(); clearTimeout(pending); };
}
