// The situation board (/map): an SVG map of the sites from their coordinates, each coloured by
// its worst open severity (and saying it in text), streets labelled; sites without a location sit
// with their street. Beside it the 条块 matrix: streets × sectors, open alerts and unclosed hazards.
import { get, maybe } from '../api.js';
import { ctx, failed, streetName, deptName } from '../app.js';
import { t, tx } from '../i18n.js';
import { subscribe } from '../live.js';
import { esc, qs, worst, SEVERITIES } from '../util.js';

const COLOURS = { blue: '#1f6feb', yellow: '#e0b000', orange: '#e8720c', red: '#c81e1e' };
const OPEN_HAZARDS = ['listed', 'rectifying', 'review'];  // every state but closed
const W = 1000; const H = 640; const PAD = 40;

// Places every site: located ones by lat/lon; the others on a ring around their street's centre,
// or, for a street with no located site at all, in a row of its own along the bottom.
export function layout(sites) {
  const located = sites.filter((s) => s.location);
  const lats = located.map((s) => s.location.lat); const lons = located.map((s) => s.location.lon);
  const [la0, la1] = lats.length ? [Math.min(...lats), Math.max(...lats)] : [0, 1];
  const [lo0, lo1] = lons.length ? [Math.min(...lons), Math.max(...lons)] : [0, 1];
  const k = Math.cos((((la0 + la1) / 2) * Math.PI) / 180);  // metres per degree of longitude shrink with latitude
  const spanX = Math.max((lo1 - lo0) * k, 1e-4); const spanY = Math.max(la1 - la0, 1e-4);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD - 60) / spanY);
  const pos = new Map();
  const dx = Math.max(0, (W - 2 * PAD - spanX * scale) / 2);  // centred across the frame
  for (const s of located) pos.set(s.id, [PAD + dx + (s.location.lon - lo0) * k * scale, PAD + (la1 - s.location.lat) * scale]);
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

// The convex hull of points (Andrew's monotone chain), for drawing a street's area.
function hull(points) {
  const p = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (list) => {
    const out = [];
    for (const q of list) { while (out.length >= 2 && cross(out[out.length - 2], out[out.length - 1], q) <= 0) out.pop(); out.push(q); }
    out.pop();
    return out;
  };
  return [...half(p), ...half([...p].reverse())];
}

export async function render(el) {
  document.title = `${t('nav.map')} · ${t('app.name')}`;
  let alerts = []; let hazards = [];
  let alive = true;
  let loads = 0;  // reloads may overlap: only the latest answer is drawn
  async function load() {
    const mine = ++loads;
    const [o, a, ...hz] = await Promise.all([
      get(`/alerts${qs({ state: 'open', limit: 1000 })}`), get(`/alerts${qs({ state: 'acknowledged', limit: 1000 })}`),
      ...OPEN_HAZARDS.map((s) => maybe(`/hazards${qs({ state: s, limit: 1000 })}`))]);
    if (mine !== loads) return false;
    alerts = [...o, ...a];
    hazards = hz.flatMap((x) => x || []);
    return true;
  }
  await load();
  const sites = [...ctx.sites.values()];
  const pos = layout(sites);
  const draw = () => {
    if (!alive) return;
    const worstOf = new Map();
    for (const a of alerts) worstOf.set(a.site, worst([worstOf.get(a.site), a.severity].filter(Boolean)));
    const streets = [...new Set(sites.map((s) => s.street))];
    const sectors = [...new Set(sites.map((s) => s.sector))];
    // each street as the padded hull of its sites, its name at the hull's centre
    const labels = streets.map((st, i) => {
      const ps = sites.filter((s) => s.street === st).map((s) => pos.get(s.id));
      const own = pos.get(`street:${st}`);
      const cx = ps.reduce((a, p) => a + p[0], 0) / ps.length; const cy = ps.reduce((a, p) => a + p[1], 0) / ps.length;
      const ring = hull(ps.flatMap(([x, y]) => [[x - 12, y - 12], [x + 12, y - 12], [x + 12, y + 12], [x - 12, y + 12]]));
      const fill = i % 2 ? '#e8eef6' : '#eef3e8';
      return `<g class="street"><polygon points="${ring.map((p) => p.map((v) => v.toFixed(1)).join(',')).join(' ')}" fill="${fill}" fill-opacity="0.55" stroke="#9aa5b1" stroke-dasharray="4 3"/>
        <text x="${(own ? own[0] : cx).toFixed(1)}" y="${(own ? own[1] + 4 : cy - 14).toFixed(1)}" text-anchor="${own ? 'start' : 'middle'}" font-size="13" font-weight="600" fill="#3a4654" opacity="0.85">${esc(streetName(st))}</text></g>`;
    }).join('');
    const dots = sites.map((s) => {
      const [x, y] = pos.get(s.id); const sev = worstOf.get(s.id);
      const label = `${s.id} ${s.name}: ${sev ? tx('sev', sev) : t('map.calm')}`;
      return `<a href="/sites/${encodeURIComponent(s.id)}" aria-label="${esc(label)}"><g class="site"><title>${esc(label)}</title>
        <circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${sev ? 8 : 6}" fill="${sev ? COLOURS[sev] : '#c4cbd3'}" stroke="#1b1f24" stroke-width="${s.location ? 1 : 0.6}" ${s.location ? '' : 'stroke-dasharray="2 1.5"'}/>
        ${sev ? `<text x="${(x + 10).toFixed(1)}" y="${(y + 4).toFixed(1)}" font-size="12" font-weight="700" fill="#1b1f24" paint-order="stroke" stroke="#fff" stroke-width="3">${esc(s.id)} ${esc(tx('sev', sev))}</text>` : ''}</g></a>`;
    }).join('');
    const box = `0 0 ${W} ${H}`;
    const cell = (st, sec) => {
      const ids = new Set(sites.filter((s) => s.street === st && s.sector === sec).map((s) => s.id));
      if (!ids.size) return '<td class="cell muted">·</td>';
      const as = alerts.filter((a) => ids.has(a.site)); const hs = hazards.filter((h) => ids.has(h.site));
      const w = worst(as.map((a) => a.severity));
      // the colour is the worst alert (as on the map); unclosed hazards add a bar, bold if one is major or overdue
      const grave = hs.some((h) => h.level === 'major' || h.overdue);
      const hzText = esc(t('map.cellhazards', { n: hs.length }));
      return `<td class="cell${w ? ` bg-${w}` : ''}${hs.length ? ' hz' : ''}${grave ? ' hz-grave' : ''}"><span title="${esc(t('map.alerts'))}">${esc(t('map.cellalerts', { n: as.length }))}</span><br><span>${grave ? `<strong>${hzText}</strong>` : hzText}</span>${w ? `<br><span class="small">${esc(tx('sev', w))}</span>` : ''}</td>`;
    };
    el.innerHTML = `<h1>${esc(t('map.title'))}</h1><div>
      <section class="card map-wrap"><h2>${esc(t('map.map'))}</h2>
        <svg viewBox="${box}" role="img" aria-label="${esc(t('map.aria', { n: sites.length }))}">${labels}${dots}</svg>
        <div class="legend">${SEVERITIES.map((s) => `<span class="sev sev-${s}">${esc(tx('sev', s))}</span>`).join('')}<span class="muted">○ ${esc(t('map.calm'))}</span><span class="muted">${esc(t('map.nolocation'))}</span></div></section>
      <section class="card matrix-wrap"><h2>${esc(t('map.matrix'))}</h2><table id="matrix"><thead><tr><th scope="col">${esc(t('f.street'))} \\ ${esc(t('f.sector'))}</th>${sectors.map((s) => `<th scope="col">${esc(deptName(s))}</th>`).join('')}</tr></thead>
        <tbody>${streets.map((st) => `<tr><th scope="row">${esc(streetName(st))}</th>${sectors.map((sec) => cell(st, sec)).join('')}</tr>`).join('')}</tbody></table>
        <p class="legend muted">${esc(t('map.matrixlegend'))}</p></section></div>`;
  };
  draw();
  let pending = null;
  const off = subscribe(() => { clearTimeout(pending); pending = setTimeout(() => load().then((latest) => { if (latest) draw(); }).catch(failed), 500); });
  return () => { alive = false; off(); clearTimeout(pending); };
}
