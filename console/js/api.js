// The public HTTP API (/api/v1), signed in by the session cookie; writes carry X-CSRF-Token.
let csrf = null;
let onSignedOut = () => {};
export function setCsrf(token) { csrf = token; }
export function whenSignedOut(fn) { onSignedOut = fn; }

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; this.detail = detail; }
}

export async function api(method, path, body, { form = false, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let payload;
  if (form) payload = body;
  else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  const resp = await fetch(`/api/v1${path}`, { method, headers, body: payload, credentials: 'same-origin' });
  if (resp.status === 204) return null;
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!resp.ok) {
    if (resp.status === 401 && !quiet401) onSignedOut();
    const detail = data && typeof data === 'object' && data.detail ? data.detail : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, typeof detail === 'string' ? detail : JSON.stringify(detail));
  }
  return data;
}
export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});
// GET that answers null for 404/405 (an endpoint another release may lack) instead of failing the page.
export async function maybe(path) {
  try { return await get(path); } catch (e) { if (e.status === 404 || e.status === 405 || e.status === 403) return null; throw e; }
}
