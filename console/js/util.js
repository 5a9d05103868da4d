// Small helpers shared by every page: escaping for innerHTML, severity order, form reading.
export const SEVERITIES = ['blue', 'yellow', 'orange', 'red'];
export const sevRank = (s) => SEVERITIES.indexOf(s);
export const worst = (list) => list.reduce((w, s) => (sevRank(s) > sevRank(w) ? s : w), null);

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v) => (v === null || v === undefined ? '' : String(v).replace(/[&<>"']/g, (c) => ESC[c]));

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function formData(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) if (typeof v === 'string') out[k] = v.trim();
  return out;
}

export function options(list, selected, blank) {
  const head = blank === undefined ? '' : `<option value="">${esc(blank)}</option>`;
  return head + list.map(([v, label]) => `<option value="${esc(v)}"${v === selected ? ' selected' : ''}>${esc(label)}</option>`).join('');
}

export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

// The page's filters from the address: only the keys of `defaults` (never ?lang= or strays).
export function urlFilters(defaults) {
  const q = new URLSearchParams(location.search);
  return Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, q.get(k) ?? v]));
}
