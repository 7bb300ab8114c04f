/* hazardscan inspector app (拍图识隐患): a single page of ES modules, no framework, nothing
 * fetched from outside. This module is the entry: the router and the start.
 * Routes: #/login #/inspections(?q=…&f=…) #/new #/inspection/ID #/events(?review=…) #/reports(?status=…)
 * #/ledger(?status=…) #/stats #/me
 * Photos: chosen -> IndexedDB queue (UUID idempotency key) -> downscaled (long side 2048) -> uploaded with
 * progress -> removed from the queue only after a 2xx. The API is described in docs/app-api.md. */
import { LS, st } from './state.js';
import { downscale, netBadge, pump, pumping, queued, uploadHooks } from './queue.js';
import { en, t } from './i18n.js';
import { $, h, icon } from './dom.js';
import { refreshMe, taxonomy } from './api.js';
import { viewInspection } from './inspection.js';
import { viewLedger } from './ledger.js';
import { viewList, viewLogin, viewNew } from './views.js';
import { viewEvents } from './events.js';
import { viewReports } from './reports.js';
import { viewMe } from './me.js';
import { viewStats } from './stats.js';

export const routes = [
  [/^#\/login$/, viewLogin], [/^#\/inspections(?:\?(.*))?$/, viewList], [/^#\/new$/, viewNew],
  [/^#\/inspection\/([\w-]+)$/, viewInspection], [/^#\/ledger(?:\?status=(\w+))?$/, viewLedger], [/^#\/stats$/, viewStats],
  [/^#\/me$/, viewMe], [/^#\/events(?:\?review=(\w+))?$/, viewEvents],
  [/^#\/reports(?:\?status=(\w+))?$/, viewReports],
];
export function go(hash) { if (location.hash !== hash) location.hash = hash; else route(); }
export async function route() {
  const seq = ++st.seq;
  const hash = location.hash || '#/inspections';
  const main = $('#view');
  if (!st.user && hash !== '#/login') {
    if (!(await refreshMe())) { go('#/login'); return; }
    pump();
  }
  for (const hooks of Object.values(uploadHooks)) hooks.clear();  // the old view's; the new one adds its own
  const hit = routes.find(([re]) => re.test(hash)) || routes[1];
  const args = hash.match(hit[0])?.slice(1) || [];
  nav(hash);
  main.replaceChildren(h('p', { class: 'empty' }, t('loading')));
  let el;
  try {
    if (hit[1] !== viewLogin) await taxonomy();
    el = await hit[1](...args);
  } catch (e) {
    if (e.status === 401) return;
    el = h('div', { class: 'card' }, h('p', { class: 'err' }, e.message),
      h('button', { class: 'btn', type: 'button', onclick: route }, t('retry')));
  }
  if (seq !== st.seq) return;  // the user went elsewhere meanwhile
  main.replaceChildren(el);
  window.scrollTo(0, 0);
}
export function nav(hash) {
  const el = $('#nav');
  el.hidden = !st.user || hash === '#/login';
  const items = [['#/inspections', 'list', 'nav_insp'], ['#/ledger', 'ledger', 'nav_ledger'],
    ['#/stats', 'chart', 'nav_stats'], ['#/me', 'me', 'nav_me']];
  const cur = /^#\/(inspection\/|new$|events|reports)/.test(hash) ? '#/inspections' : hash.replace(/\?.*$/, '');
  el.setAttribute('aria-label', en() ? 'Main' : '主导航');
  el.replaceChildren(...items.map(([href, ic, label]) => h('a', { href,
    'aria-current': cur === href ? 'page' : null }, icon(ic), t(label))));
}
export function applyLang() {
  document.documentElement.lang = en() ? 'en' : 'zh-CN';
  document.title = en() ? 'HazardScan · inspections' : '拍图识隐患 · hazardscan';
  $('#brand-text').textContent = t('brand');
  const b = $('#lang');
  b.textContent = en() ? '中文' : 'EN';
  b.setAttribute('aria-label', en() ? '切换到中文' : 'Switch to English');
  $('.skip').textContent = t('skip');
  netBadge();
}

export function setLang(l) {
  st.lang = l;
  LS.setItem('hazardscan.lang', l);
  applyLang();
  route();
}
$('#lang').addEventListener('click', () => setLang(en() ? 'zh' : 'en'));
window.addEventListener('hashchange', route);
applyLang();
route();
setInterval(() => { if (queued.some((r) => !r.error) && !pumping) pump(); }, 30000);
if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => { /* http: no shell cache */ });
window.hazardscan = { pump, queue: () => queued, downscale };  // for tests and the benchmark
