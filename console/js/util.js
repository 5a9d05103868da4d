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

// Is `next` a later version of the same record than `cur`? Events are append-only, so more events
// is later; with as many (or none listed), the later updated_at. The same version is not newer.
export function isNewer(next, cur) {
  if (!next) return false;
  if (!cur) return true;
  const n = next.events?.length; const c = cur.events?.length;
  if (n !== undefined && c !== undefined && n !== c) return n > c;
  return (Date.parse(next.updated_at) || 0) > (Date.parse(cur.updated_at) || 0);
}
