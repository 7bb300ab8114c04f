/* hazardscan app shell for weak signal: the page, its script and styles come from this cache when the network
 * does not answer, so a reload in a basement still shows the app and its queued photos. Network first: a new
 * version shows as soon as there is signal. The API, photos and documents always go to the network. */
'use strict';
const CACHE = 'hazardscan-shell-v2';
const MODULES = ['app.js', 'state.js', 'i18n.js', 'dom.js', 'api.js', 'queue.js', 'views.js', 'inspection.js',
  'ledger.js', 'charts.js', 'stats.js', 'me.js', 'account.js', 'events.js', 'reports.js'];
const SHELL = ['./', 'app.css', ...MODULES];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== self.location.origin) return;
  const scope = new URL(self.registration.scope).pathname;  // /app/
  const rel = url.pathname.slice(scope.length);
  if (!url.pathname.startsWith(scope) || !['', 'index.html', 'app.css', ...MODULES].includes(rel)) return;
  const key = rel === 'index.html' ? './' : rel || './';
  e.respondWith(fetch(e.request).then((r) => {
    if (r.ok) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(new URL(key, self.registration.scope), copy)); }
    return r;
  }).catch(() => caches.match(new URL(key, self.registration.scope))));
});
