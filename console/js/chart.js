// A small SVG time-series chart: the readings as a line, a threshold rule's levels as coloured
// bands, alert spans as shaded columns, and the trend forecast as a dashed line to its ETA.
import { esc, fmtNum, sevRank } from './util.js';
import { fmtTime, t, tx } from './i18n.js';

const W = 560; const H = 220; const L = 52; const R = 12; const T = 12; const B = 28;
const COLOURS = { blue: '#1f6feb', yellow: '#e0b000', orange: '#e8720c', red: '#c81e1e' };

// spec: {metric, unit, start, end (ms), points [{time, value}], rule {direction, levels}|null,
//        spans [{from, to, severity}], forecast [{level, eta, threshold}], last {time(ms), value}}
export function chartSvg(spec) {
  const pts = spec.points.filter((p) => p.value !== null).map((p) => [Date.parse(p.time), p.value]);
  const fc = (spec.forecast || []).filter((f) => f.eta && spec.last);
  const endMs = Math.max(spec.end, ...fc.map((f) => Date.parse(f.eta)).filter((x) => x - spec.end < (spec.end - spec.start)));
  const levels = spec.rule ? Object.entries(spec.rule.levels) : [];
  const values = [...pts.map((p) => p[1]), ...levels.map(([, v]) => v)];
  let lo = values.length ? Math.min(...values) : 0; let hi = values.length ? Math.max(...values) : 1;
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const x = (ms) => L + ((ms - spec.start) / (endMs - spec.start)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const clampY = (v) => Math.max(T, Math.min(H - B, y(v)));
  const parts = [];
  // level bands: from each level's bound to the next (or the edge), in its colour
  const ordered = levels.sort((a, b) => sevRank(a[0]) - sevRank(b[0]));
  // boxes of the texts drawn at the right edge (level labels, ETAs), so no two overprint
  const texts = [];
  const width = (text) => [...text].reduce((w, c) => w + (c.codePointAt(0) > 0x2e7f ? 10 : 6), 0);  // at font-size 10
  const box = (right, baseline, text) => ({ x1: right - width(text) - 2, x2: right + 2, y1: baseline - 10, y2: baseline + 2 });
  const clash = (b) => b.y1 < T - 2 || b.y2 > H - B + 2 || texts.some((o) => b.x1 < o.x2 && o.x1 < b.x2 && b.y1 < o.y2 && o.y1 < b.y2);
  ordered.forEach(([sev, bound], i) => {
    const next = ordered[i + 1]?.[1];
    const above = spec.rule.direction !== 'below';
    const far = next ?? (above ? hi : lo);
    const y1 = clampY(above ? far : bound); const y2 = clampY(above ? bound : far);
    parts.push(`<rect class="band" x="${L}" y="${y1.toFixed(1)}" width="${W - L - R}" height="${Math.max(0, y2 - y1).toFixed(1)}" fill="${COLOURS[sev]}" fill-opacity="0.13"><title>${esc(tx('sev', sev))} ${fmtNum(bound)}</title></rect>`);
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${clampY(bound).toFixed(1)}" y2="${clampY(bound).toFixed(1)}" stroke="${COLOURS[sev]}" stroke-width="1"/>`);
    const text = `${tx('sev', sev)} ${fmtNum(bound)}`;
    texts.push(box(W - R - 2, clampY(bound) - 3, text));
    parts.push(`<text x="${W - R - 2}" y="${(clampY(bound) - 3).toFixed(1)}" text-anchor="end" font-size="10" fill="${COLOURS[sev]}">${esc(text)}</text>`);
  });
  for (const s of spec.spans || []) {
    const a = Math.max(spec.start, s.from); const b = Math.min(endMs, s.to ?? spec.end);
    if (b <= a) continue;
    parts.push(`<rect class="span" x="${x(a).toFixed(1)}" y="${T}" width="${Math.max(2, x(b) - x(a)).toFixed(1)}" height="${H - T - B}" fill="${COLOURS[s.severity] || '#888'}" fill-opacity="0.18"><title>${esc(t('chart.alert'))} ${esc(s.label || '')}</title></rect>`);
    parts.push(`<rect x="${x(a).toFixed(1)}" y="${T}" width="${Math.max(2, x(b) - x(a)).toFixed(1)}" height="4" fill="${COLOURS[s.severity] || '#888'}"/>`);
  }
  // axes: four value ticks, four time ticks
  for (let i = 0; i <= 4; i += 1) {
    const v = lo + ((hi - lo) * i) / 4;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e3e6ea"/><text x="${L - 4}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end" font-size="10" fill="#5b6570">${fmtNum(v)}</text>`);
  }
  const short = endMs - spec.start <= 36 * 3600e3;
  for (let i = 0; i <= 4; i += 1) {
    const ms = spec.start + ((endMs - spec.start) * i) / 4;
    parts.push(`<text x="${x(ms).toFixed(1)}" y="${H - 8}" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}" font-size="10" fill="#5b6570">${esc(fmtTime(ms, short ? 'clock' : 'short'))}</text>`);
  }
  if (pts.length) {
    const d = pts.map(([ms, v], i) => `${i ? 'L' : 'M'}${x(ms).toFixed(1)},${y(v).toFixed(1)}`).join('');
    parts.push(`<path class="line" d="${d}" fill="none" stroke="#14202e" stroke-width="1.6"/>`);
    if (pts.length === 1) parts.push(`<circle cx="${x(pts[0][0]).toFixed(1)}" cy="${y(pts[0][1]).toFixed(1)}" r="3" fill="#14202e"/>`);
  } else {
    parts.push(`<text x="${(W / 2).toFixed(0)}" y="${(H / 2).toFixed(0)}" text-anchor="middle" fill="#5b6570">${esc(t('chart.empty'))}</text>`);
  }
  for (const f of fc) {
    const eta = Date.parse(f.eta);
    if (eta > endMs) continue;
    const x1 = x(spec.last.time); const y1 = clampY(spec.last.value); const x2 = x(eta); const y2 = clampY(f.threshold);
    parts.push(`<line class="forecast" x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${COLOURS[f.level]}" stroke-width="2" stroke-dasharray="5 4"/>`);
    // the ETA's text below its point, else above; where both would overprint another text, none
    // (the page lists every ETA under the chart)
    const text = t('chart.eta', { time: fmtTime(eta, 'clock') });
    const at = [y2 + 12, y2 - 4].map((ty) => [ty, box(x2 - 3, ty, text)]).find(([, b]) => !clash(b));
    if (!at) continue;
    texts.push(at[1]);
    parts.push(`<text x="${(x2 - 3).toFixed(1)}" y="${at[0].toFixed(1)}" text-anchor="end" font-size="10" fill="${COLOURS[f.level]}">${esc(text)}</text>`);
  }
  const label = t('chart.aria', { metric: spec.metric, unit: spec.unit || '', from: fmtTime(spec.start, 'short'), to: fmtTime(spec.end, 'short'), n: pts.length });
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}" data-metric="${esc(spec.metric)}" width="100%">${parts.join('')}</svg>`;
}
