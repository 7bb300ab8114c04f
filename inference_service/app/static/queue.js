/* The offline queue (IndexedDB): every photo, every inspection started and every decision on a finding made
 * without signal is stored first (a photo with its idempotency key, downscaled in the browser, uploaded with
 * progress), sent in order when online, and removed only after a 2xx. */
import { LS, st } from './state.js';
import { api, langHeader, loggedOut, plainError, refreshMe } from './api.js';
import { $, ask, downscale, h, icon, put, uuid } from './dom.js';
import { t } from './i18n.js';

export { downscale } from './dom.js';  // app.js takes it from here (window.hazardscan, for tests and the benchmark)
/* Two stores: 'queue' holds small records (what, where, state), 'bytes' the photo under the same key, so that
 * listing the queue never reads megabytes. */
export const idb = {
  db: null,
  open() {
    this.db ||= new Promise((res, rej) => {
      const r = indexedDB.open('hazardscan', 2);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains('queue')) db.createObjectStore('queue', { keyPath: 'key' });
        if (!db.objectStoreNames.contains('bytes')) db.createObjectStore('bytes');
      };
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    return this.db;
  },
  async run(stores, mode, fn) {
    const db = await this.open();
    return new Promise((res, rej) => {
      const tx = db.transaction(stores, mode);
      const req = fn(tx);
      tx.oncomplete = () => res(req?.result);
      tx.onerror = () => rej(tx.error);
      tx.onabort = () => rej(tx.error);
    });
  },
  /** Store a record, and its photo bytes when given (one transaction: never one without the other). */
  put(rec, bytes) {
    return this.run(['queue', 'bytes'], 'readwrite', (tx) => {
      if (bytes !== undefined) tx.objectStore('bytes').put(bytes, rec.key);
      return tx.objectStore('queue').put(rec);
    });
  },
  del(key) {
    return this.run(['queue', 'bytes'], 'readwrite', (tx) => {
      tx.objectStore('bytes').delete(key);
      return tx.objectStore('queue').delete(key);
    });
  },
  get(key) { return this.run(['queue'], 'readonly', (tx) => tx.objectStore('queue').get(key)); },
  bytes(key) { return this.run(['bytes'], 'readonly', (tx) => tx.objectStore('bytes').get(key)); },
  all() { return this.run(['queue'], 'readonly', (tx) => tx.objectStore('queue').getAll()); },
};
export const live = new Map();  // key -> {phase, frac}: what the queue is doing right now (not persisted)
export const listeners = new Set();
export let queued = [];  // a light copy of the queue (no bytes) for the views
export async function notify() {
  try {
    queued = (await idb.all()).filter((r) => r.user === st.user?.id).sort((a, b) => a.created - b.created);
  } catch { queued = []; }
  netBadge();
  for (const f of listeners) f();
}
export const thumbs = new Map();  // key -> object URL
export async function thumb(key, type) {
  if (!thumbs.has(key)) {
    const bytes = await idb.bytes(key);
    thumbs.set(key, bytes ? URL.createObjectURL(new Blob([bytes], { type })) : '');
  }
  return thumbs.get(key);
}

/** Store the chosen files first (each with its idempotency key), then try to upload. */
export async function enqueue(files, kind, target, scene = null) {
  const keys = [];
  for (const f of files) {
    const bytes = await f.arrayBuffer();
    const rec = { key: uuid(), kind, target: String(target), user: st.user.id, name: f.name || 'photo.jpg',
      type: f.type || 'application/octet-stream', size: bytes.byteLength, created: Date.now(), scaled: false,
      error: null, taken_at: f.lastModified ? new Date(f.lastModified).toISOString() : null, scene };
    await idb.put(rec, bytes);  // the photo is safe on the phone from here on
    keys.push(rec.key);
  }
  await notify();
  for (const key of keys) await prepare(key);  // downscale now, signal or not: a tenth of the bytes to keep
  pump();
}

const preparing = new Map();  // key -> promise: one downscale per photo even when the pump asks too
/** Replace a queued photo's bytes by the downscaled JPEG (once; kept as they are if the browser cannot decode). */
export function prepare(key) {
  if (!preparing.has(key)) {
    preparing.set(key, (async () => {
      const rec = await idb.get(key);
      if (!rec || rec.scaled || rec.kind === 'insp') return;
      setLive(key, 'prep');
      let bytes;
      if (LS.getItem('hazardscan.noDownscale') !== '1') {
        try {
          const small = await downscale(new Blob([await idb.bytes(key)], { type: rec.type }));
          if (small) { bytes = await small.arrayBuffer(); rec.type = 'image/jpeg'; rec.size = bytes.byteLength; }
        } catch { /* not decodable here: the server says what is wrong with it */ }
      }
      rec.scaled = true;
      await idb.put(rec, bytes);
      if (live.get(key)?.phase === 'prep') live.delete(key);
    })().finally(() => preparing.delete(key)));
  }
  return preparing.get(key);
}

export function xhrPost(url, form, onProgress) {
  return new Promise((res) => {
    const x = new XMLHttpRequest();
    x.open('POST', url);
    x.setRequestHeader('X-CSRF-Token', st.csrf);
    x.setRequestHeader('Accept', 'application/json');
    x.setRequestHeader('Accept-Language', langHeader());
    x.timeout = 180000;
    x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    x.upload.onload = () => onProgress(1);
    x.onload = () => {
      let data = null;
      try { data = JSON.parse(x.responseText); } catch { /* not JSON */ }
      res({ status: x.status, data, retryAfter: Number(x.getResponseHeader('Retry-After')) || 0 });
    };
    x.onerror = x.ontimeout = x.onabort = () => res({ status: 0, data: null });
    x.send(form);
  });
}

export const uploadHooks = { photo: new Set(), rect: new Set(), insp: new Set(), dec: new Set() };
/* An inspection started without signal lives as 'local-<client_id>' until the server has created it; its
 * photos wait for that. The map local id -> server id outlives the page (a photo chosen meanwhile). */
export const localIds = () => JSON.parse(LS.getItem('hazardscan.localIds') || '{}');
export function rememberLocal(local, id) {
  const m = localIds();
  m[local] = String(id);
  for (const old of Object.keys(m).slice(0, -50)) delete m[old];  // keep the last 50
  LS.setItem('hazardscan.localIds', JSON.stringify(m));
}
/** Queue a request without a photo ('insp': its body; 'dec': a finding's decision, the key one per finding, so that
 * a later decision replaces the one waiting; ``extra`` goes into the record: a decision's inspection, ``insp``). */
export async function queueJson(kind, key, target, name, body, extra = {}) {
  await idb.put({ ...extra, key, kind, target, user: st.user.id, name, body, created: Date.now(), error: null });
  await notify();
  pump();
}
export const queueInspection = (body) => queueJson('insp', body.client_id, '', body.unit.name, body)
  .then(() => `local-${body.client_id}`);
export let decSent = 0;  // decisions sent so far: a view that read the findings meanwhile reads them again
/** Send a queued inspection or decision: 'ok' | 'stop' | 'failed' like uploadOne. */
export async function sendOne(rec) {
  const dec = rec.kind === 'dec';
  let out = null;
  setLive(rec.key, 'up', 0);
  try {
    out = await api('POST', dec ? `/app/api/findings/${rec.target}/decision` : '/app/api/inspections', rec.body,
      { noLogin: true });
  } catch (e) {
    if (e.status === 0 || e.status === 401 || e.status === 408 || e.status === 429 || e.status >= 500) {
      setLive(rec.key, 'wait');
      if (e.status === 401) loggedOut(1);  // the session ended: kept on the phone, sent once logged in again
      return 'stop';
    }
    live.delete(rec.key);
    if (!dec) { rec.error = e.message; await idb.put(rec); return 'failed'; }
    // refused (404, 409: the hazard is being rectified): trying again cannot help; say which one and why
    ask(t('dec_lost', rec.name, t(rec.body.decision)), e.message, [], t('got_it'));
  }
  live.delete(rec.key);
  if (!dec) rememberLocal(`local-${rec.key}`, out.id);
  if ((await idb.get(rec.key))?.created === rec.created) await idb.del(rec.key);  // not replaced meanwhile
  if (dec) { decSent += 1; await notify(); }
  for (const f of [...uploadHooks[rec.kind]]) f(rec, out);
  return out ? 'ok' : 'failed';
}
export function setLive(key, phase, frac = 0) { live.set(key, { phase, frac }); for (const f of listeners) f(); }

/** One upload attempt: 'ok' | 'stop' (offline, server trouble: try later) | 'failed' (needs the user). */
export async function uploadOne(queuedRec) {
  await prepare(queuedRec.key);
  const rec = await idb.get(queuedRec.key);
  if (!rec) return 'ok';  // discarded meanwhile
  const bytes = await idb.bytes(rec.key);
  const url = rec.kind === 'rect' ? `/app/api/ledger/${rec.target}/rectification`
    : `/app/api/inspections/${rec.target}/photos`;
  const form = new FormData();
  const name = rec.type === 'image/jpeg' ? rec.name.replace(/\.\w+$/, '') + '.jpg' : rec.name;
  form.append('photo', new Blob([bytes], { type: rec.type }), name);
  form.append('idempotency_key', rec.key);
  if (rec.taken_at) form.append('taken_at', rec.taken_at);
  if (rec.scene) form.append('scene', rec.scene);
  setLive(rec.key, 'up', 0);
  const r = await xhrPost(url, form, (f) => setLive(rec.key, f >= 1 ? 'proc' : 'up', f));
  if (r.status !== 429 && r.status !== 503) busyInARow = 0;
  if (r.status >= 200 && r.status < 300) {
    await idb.del(rec.key);
    live.delete(rec.key);
    if (thumbs.get(rec.key)) URL.revokeObjectURL(thumbs.get(rec.key));
    thumbs.delete(rec.key);
    for (const f of [...uploadHooks[rec.kind]]) f(rec, r.data);  // a hook may add hooks
    return 'ok';
  }
  if (r.status === 403 && /csrf/i.test(r.data?.error?.code || '')) {
    const before = st.csrf;
    setLive(rec.key, 'wait');
    return await refreshMe() && st.csrf !== before ? 'again' : 'stop';
  }
  if (r.status === 429 || r.status === 503) {  // the server is busy: try again when it says, not in 15 s
    setLive(rec.key, 'busy');
    busyInARow += 1;  // refused again and again: back off, so that a crowd of phones does not upload in step
    const wait = Math.max(1000, r.retryAfter * 1000, 1000 * 2 ** Math.min(busyInARow - 1, 4));
    retryInMs = Math.min(RETRY_MS, wait) * (0.8 + 0.4 * Math.random());
    return 'stop';
  }
  if (r.status === 507) {  // the server's disk is full: kept on the phone until an operator frees space
    setLive(rec.key, 'full');
    retryInMs = Math.min(5 * 60000, Math.max(RETRY_MS, r.retryAfter * 1000));
    return 'stop';
  }
  if (r.status === 0 || r.status === 401 || r.status === 408 || r.status >= 500) {
    setLive(rec.key, 'wait');
    if (r.status === 401) loggedOut(1);
    return 'stop';
  }
  if (r.status === 422 && r.data?.error?.code === 'invalid_taken_at' && rec.taken_at) {
    rec.taken_at = null;  // the device's clock was off: the photo goes without its file time
    await idb.put(rec);
    setLive(rec.key, 'wait');
    return 'again';
  }
  rec.status = r.status;  // 400/413/415: the file itself is refused; trying it again cannot help
  rec.error = r.status === 415 ? t('q_not_photo') : r.status === 413 ? t('q_too_large')
    : r.data?.error?.message || plainError(r.status);
  await idb.put(rec);
  live.delete(rec.key);
  return 'failed';
}

export let pumping = false;
export let pumpAgain = false;
export let retryTimer = 0;
const RETRY_MS = 15000;  // offline or server trouble: the next try
let retryInMs = RETRY_MS;  // sooner when a busy server said when (Retry-After)
let busyInARow = 0;
export async function pump() {
  if (pumping) { pumpAgain = true; return; }
  pumping = true;
  let stopped = false;
  try {
    do {
      pumpAgain = false;
      if (!st.user || !navigator.onLine) { stopped = true; break; }
      const recs = (await idb.all()).filter((r) => r.user === st.user.id && !r.error)
        .sort((a, b) => a.created - b.created);
      for (const rec of recs) {
        if (rec.target.startsWith('local-')) {  // a photo of an inspection not created yet
          const id = localIds()[rec.target];
          if (!id) continue;
          rec.target = id;
          await idb.put(rec);
        }
        const res = rec.body ? await sendOne(rec) : await uploadOne(rec);
        await notify();
        if (res === 'again') { pumpAgain = true; break; }
        if (res === 'stop') { stopped = true; break; }
      }
    } while (pumpAgain && !stopped);
  } catch (e) {
    stopped = true;
    console.warn('upload queue', e);
  } finally {
    pumping = false;
    await notify();
  }
  clearTimeout(retryTimer);
  if (stopped && queued.some((r) => !r.error)) retryTimer = setTimeout(pump, retryInMs);
  retryInMs = RETRY_MS;
}
window.addEventListener('online', () => { netBadge(); pump(); });
window.addEventListener('offline', netBadge);

export function netBadge() {
  const el = $('#net');
  if (!el) return;
  const n = (k) => queued.filter((r) => !r.error && (r.body ? r.kind : 'photo') === k).length;  // photo, rect: photos
  const q = ['photo', 'insp', 'dec'].filter(n).map((k) => t(`q_${k}s`, n(k))).join(t('q_and'));
  el.textContent = [navigator.onLine ? '' : t('offline'), q && t('q_badge', q)].filter(Boolean).join(' · ');
}

const REFUSED = [400, 413, 415];  // empty or broken, too large, not a photo: only 放弃 helps
/** The queue card of one inspection (or ledger item): what waits, its progress, failed ones to retry. */
export function queueCard(kind, target) {
  const box = h('section', { class: 'card queue', 'aria-live': 'polite', hidden: true, 'data-queue': target });
  const paint = async () => {
    if (!box.isConnected && box.dataset.painted) { listeners.delete(paint); return; }
    box.dataset.painted = '1';
    const mine = queued.filter((r) => r.kind === kind && r.target === String(target));
    box.hidden = mine.length === 0;
    if (!mine.length) { box.replaceChildren(); return; }
    const rows = await Promise.all(mine.map(async (r) => {
      const lv = live.get(r.key);
      let text = t('q_wait');
      let bar = null;
      if (r.error) text = t('q_fail', r.error);
      else if (lv?.phase === 'prep') text = t('q_prep');
      else if (lv?.phase === 'up') {
        text = t('q_up', Math.round(lv.frac * 100));
        bar = h('progress', { max: 100, value: Math.round(lv.frac * 100) });
      } else if (lv?.phase === 'proc') text = t('q_proc');
      else if (lv?.phase === 'busy') text = t('q_busy');
      else if (lv?.phase === 'full') text = t('q_full');
      const acts = r.error ? h('div', { class: 'row' },
        REFUSED.includes(r.status) ? null : h('button', { class: 'btn ghost', type: 'button', onclick: async () => {
          const rec = await idb.get(r.key); rec.error = null; await idb.put(rec); await notify(); pump(); } }, t('retry')),
        h('button', { class: 'btn bad', type: 'button', onclick: async () => {
          if (!window.confirm(t('discard_q'))) return;
          await idb.del(r.key); await notify(); } }, t('discard'))) : null;
      return h('div', { class: 'qi', 'data-key': r.key },
        h('img', { src: await thumb(r.key, r.type), alt: '',  // not a picture (415): a file icon, not a broken image
          onerror: (e) => e.currentTarget.replaceWith(h('span', { class: 'qi-ph' }, icon('doc'))) }),
        h('div', { class: 'grow' }, h('div', { class: 'small' }, r.name),
          h('div', { class: r.error ? 'err small' : 'muted small q-status' }, text), bar), acts);
    }));
    box.replaceChildren(h('h2', {}, `${t('queue')} (${mine.length})`),
      h('p', { class: 'muted small' }, t('q_safe')), ...rows);
  };
  listeners.add(paint);
  paint();
  return box;
}
/** The decisions queued on this phone for inspection ``insp``, for a view without its photos (reloaded without
 * signal): photo N · hazard, the decision and 待同步; hidden when none waits. */
export function decisionsCard(insp) {
  const box = h('section', { class: 'card queue', hidden: true, 'data-queue-decisions': insp });
  const paint = () => {
    if (!box.isConnected && box.dataset.painted) { listeners.delete(paint); return; }
    box.dataset.painted = '1';
    const mine = queued.filter((r) => r.kind === 'dec' && r.insp === String(insp));
    box.hidden = mine.length === 0;
    box.replaceChildren(...(mine.length ? [h('h2', {}, `${t('q_decs_title')} (${mine.length})`),
      h('p', { class: 'muted small' }, t('q_decs_safe')),
      ...mine.map((r) => h('div', { class: 'qi', 'data-key': r.key },
        h('div', { class: 'grow small' }, r.name),
        h('span', { class: `st dec-${r.body.decision}`, 'data-decision': r.body.decision }, t(r.body.decision)),
        h('span', { class: 'pill sync' }, t('sync_pending'))))] : []));
  };
  listeners.add(paint);
  paint();
  return box;
}
