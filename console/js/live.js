// The SSE stream (GET /api/v1/stream, cookie-authenticated): alert and hazard events as they happen.
// Pages subscribe while shown; the header shows whether the stream is connected; new alerts may
// ring a short tone and count in the title badge, both switched off with one checkbox.
import { t } from './i18n.js';

const listeners = new Set();
let source = null;
let unseen = 0;
let statusEl = null;
export const alertCue = { on: localStorage.getItem('safewatch.cue') !== 'off' };

export function subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export function connect(el) {
  statusEl = el;
  close();
  source = new EventSource('/api/v1/stream', { withCredentials: true });
  source.onopen = () => setStatus('live.on');
  source.onerror = () => setStatus('live.off');  // EventSource reconnects by itself (retry: 3000)
  source.onmessage = (ev) => {
    let body;
    try { body = JSON.parse(ev.data); } catch { return; }
    if (body.alert && body.type === 'fired') cue();
    for (const fn of listeners) {
      try { fn(body); } catch (e) { console.error(e); }
    }
  };
}
export function close() { if (source) { source.close(); source = null; } }

function setStatus(key) { if (statusEl) { statusEl.textContent = t(key); statusEl.dataset.state = key; } }

export function setCue(on) {
  alertCue.on = on;
  localStorage.setItem('safewatch.cue', on ? 'on' : 'off');
  if (!on) clearBadge();
}
function cue() {
  if (!alertCue.on) return;
  if (document.hidden || !document.hasFocus()) { unseen += 1; showBadge(); }
  beep();
}
const baseTitle = () => document.title.replace(/^\(\d+\) /, '');
function showBadge() { document.title = `(${unseen}) ${baseTitle()}`; }
export function clearBadge() { unseen = 0; document.title = baseTitle(); }
window.addEventListener('focus', clearBadge);
document.addEventListener('visibilitychange', () => { if (!document.hidden) clearBadge(); });

let audio = null;
function beep() {
  try {
    if (!audio || audio.state !== 'running') return;  // made on the first click: browsers allow sound only then
    const osc = audio.createOscillator(); const gain = audio.createGain();
    osc.frequency.value = 880; gain.gain.value = 0.08;
    osc.connect(gain).connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 0.18);
  } catch { /* no audio device: the title badge is the cue */ }
}
document.addEventListener('click', () => {
  try { if (!audio) audio = new AudioContext(); else if (audio.state === 'suspended') audio.resume(); } catch { /* none */ }
});
