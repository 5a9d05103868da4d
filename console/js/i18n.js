// One catalogue per language (console/i18n/{zh,en}.json); dates in the district's time zone.
let catalogue = {};
export let lang = 'zh';
let zone = 'UTC';

export function chooseLang() {
  const asked = new URLSearchParams(location.search).get('lang');
  if (asked === 'zh' || asked === 'en') { localStorage.setItem('safewatch.lang', asked); return asked; }
  const kept = localStorage.getItem('safewatch.lang');
  if (kept === 'zh' || kept === 'en') return kept;
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'zh';
  return nav.toLowerCase().startsWith('en') ? 'en' : 'zh';
}

export async function loadCatalogue(which) {
  lang = which;
  const resp = await fetch(`/console/i18n/${which}.json`);
  catalogue = await resp.json();
  document.documentElement.lang = which === 'zh' ? 'zh-CN' : 'en';
}

export function t(key, vars) {
  let s = catalogue[key];
  if (s === undefined) { console.warn(`i18n: missing ${lang} string ${key}`); s = key; }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? m : String(vars[k])));
  return s;
}
export const has = (key) => catalogue[key] !== undefined;
// A catalogue entry when there is one (severity, state, metric names), else the raw id.
export const tx = (prefix, id) => (catalogue[`${prefix}.${id}`] ?? id);

export function setZone(tz) { zone = tz || 'UTC'; fmtCache.clear(); }
export const timeZone = () => zone;
const fmtCache = new Map();
function fmt(kind) {
  if (!fmtCache.has(kind)) {
    const base = { timeZone: zone, hourCycle: 'h23' };
    const o = kind === 'date' ? { ...base, year: 'numeric', month: '2-digit', day: '2-digit' }
      : kind === 'short' ? { ...base, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }
        : kind === 'clock' ? { ...base, hour: '2-digit', minute: '2-digit' }
          : { ...base, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' };
    fmtCache.set(kind, new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', o));
  }
  return fmtCache.get(kind);
}
// English dates are written ISO-like (2026-03-12 13:39:27, 03-12 13:39): dd/mm and mm/dd would
// both be read next to the browser's date inputs. Chinese keeps its own unambiguous 2026/03/12.
const ISO = { full: 'Y-M-D h:m:s', short: 'M-D h:m', date: 'Y-M-D', clock: 'h:m' };
export function fmtTime(iso, kind = 'full') {
  if (!iso) return '—';
  const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  if (lang === 'zh') return fmt(kind).format(d);
  const p = Object.fromEntries(fmt(kind).formatToParts(d).map((x) => [x.type, x.value]));
  const part = { Y: p.year, M: p.month, D: p.day, h: p.hour, m: p.minute, s: p.second };
  return (ISO[kind] || ISO.full).replace(/[YMDhms]/g, (c) => part[c]);
}
// "3 h 12 min" style; seconds for under a minute.
export function fmtSpan(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t('span.s', { n: s });
  const m = Math.floor(s / 60);
  if (m < 60) return t('span.m', { n: m });
  const h = Math.floor(m / 60);
  if (h < 48) return t('span.hm', { h, m: m % 60 });
  return t('span.dh', { d: Math.floor(h / 24), h: h % 24 });
}
// The YYYY-MM-DD of `ms` in the district's zone (report date inputs).
export function zoneDate(ms) {
  const p = Object.fromEntries(fmt('date').formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}
// The UTC offset of the district's zone at `ms`, as "+08:00" (for RFC 3339 strings of local dates).
export function zoneOffset(ms) {
  const f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
  const name = f.formatToParts(new Date(ms)).find((x) => x.type === 'timeZoneName')?.value || 'GMT';
  const m = name.match(/GMT([+-]\d{2}):?(\d{2})?/);
  return m ? `${m[1]}:${m[2] || '00'}` : '+00:00';
}
