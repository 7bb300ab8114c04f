/* The JSON API (docs/app-api.md): CSRF header on writes, errors as ApiError, session, taxonomy and its names. */
import { LS, st } from './state.js';
import { en, t } from './i18n.js';
import { go } from './app.js';
import { h } from './dom.js';

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message); this.status = status; this.code = code; this.retryAfter = retryAfter;
  }
}
/** What the UI says when the answer is not the API's JSON (a proxy's HTML page, a dropped connection): never the
 * raw ``502 Bad Gateway``. */
export function plainError(status) {
  if (status === 0) return t(navigator.onLine ? 'server_down' : 'offline_err');
  if (status === 413) return t('too_large');
  return status >= 500 ? t('server_down') : t('req_failed', status);
}
export const langHeader = () => (en() ? 'en' : 'zh-CN');
export async function api(method, path, body, opts = {}) {
  const screen = st.seq;  // the screen this request is for (route() counts them)
  const headers = { Accept: 'application/json', 'Accept-Language': langHeader() };
  if (method !== 'GET') headers['X-CSRF-Token'] = st.csrf;
  let payload = body;
  if (body && !(body instanceof FormData)) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', plainError(0));
  }
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (r.ok) return data;
  const err = new ApiError(r.status, data?.error?.code || `http_${r.status}`,
    data?.error?.message || plainError(r.status), Number(r.headers.get('Retry-After')) || 0);
  if (r.status === 403 && /csrf/i.test(err.code) && !opts.retried) {
    const before = st.csrf;  // a stale (or not yet fetched) token: fetch a fresh one and try once more
    if (await refreshMe() && st.csrf !== before) return api(method, path, body, { ...opts, retried: true });
  }
  // the session ended: to the login, unless the user has left the screen that asked (a slow answer for the list
  // after an inspection was opened must not take it away; the screen shown now finds out for itself). What a screen
  // asks for beside its own content (the lines on the list, a card's ledger state) asks with noLogin: a screen left
  // behind may still be asking for it after the next one began.
  if (r.status === 401 && !opts.noLogin && screen === st.seq) loggedOut(method === 'GET' ? 1 : 2);
  throw err;
}
/** Logged out; the session expired (why 1, or 2: a change was refused): log in again returns to this page. */
export function loggedOut(why = 0) {
  if (!why) sessionStorage.removeItem('hazardscan.back');
  else if (location.hash !== '#/login') {
    sessionStorage.setItem('hazardscan.back', JSON.stringify({ hash: location.hash, uid: st.user?.id, lost: why > 1 }));
  }
  st.user = null; st.csrf = '';
  LS.removeItem('hazardscan.user');
  LS.removeItem('hazardscan.recent');
  go('#/login');
}
export function loggedIn(me) {
  st.user = me.user; st.csrf = me.csrf_token;
  LS.setItem('hazardscan.user', JSON.stringify(me.user));
}
/** The session from the server; without signal, the last user of this phone (the token comes when online). */
export async function refreshMe() {
  try {
    loggedIn(await api('GET', '/app/api/me', null, { noLogin: true }));
    return true;
  } catch (e) {
    if (e.status === 0 && !st.user) st.user = JSON.parse(LS.getItem('hazardscan.user') || 'null');
    else if (e.status === 401 && st.user) loggedOut(1);
    return e.status === 0 && Boolean(st.user);
  }
}
export let taxPromise = null;
export function taxonomy() {  // kept on the phone too: starting an inspection needs the scenes without signal
  taxPromise ||= api('GET', '/app/api/taxonomy').then((x) => {
    LS.setItem('hazardscan.taxonomy', JSON.stringify(x));
    return x;
  }).catch((e) => {
    taxPromise = null;
    const kept = e.status === 0 && LS.getItem('hazardscan.taxonomy');
    if (!kept) throw e;
    return JSON.parse(kept);
  }).then((x) => { st.tax = x; return x; });
  return taxPromise;
}
export const hazardById = (id) => st.tax?.hazards.find((x) => x.id === id);
export const sevName = (id) => {
  const sv = st.tax?.severities?.find((x) => x.id === id);
  return sv ? (en() ? (sv.name_en || id) : sv.name_zh) : id;
};
export const sceneName = (id) => {
  const sc = st.tax?.scenes?.find((x) => x.id === id || x.name_zh === id);
  return sc ? (en() ? sc.name_en : sc.name_zh) : id;
};
export const hzName = (o) => (en() ? o.name_en || o.name_zh : o.name_zh || o.name_en) || o.hazard_id || '';
export const sevBadge = (sev) => h('span', { class: `sev sev-${sev}` }, sevName(sev));
