/* DOM and SVG builders, icons (inline SVG paths), the toast and the sheet, formatting, UUIDs. */
import { en, t } from './i18n.js';

export const $ = (sel, root = document) => root.querySelector(sel);
export const SVG = 'http://www.w3.org/2000/svg';
/** Append the kids that are not null / false (Node.append would write them as text). */
export const put = (el, ...kids) => {
  for (const c of kids.flat(9)) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
};
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'style') Object.assign(el.style, v);
    else if (k === 'class' || k === 'for' || k.startsWith('aria-') || k.startsWith('data-') || k === 'role') {
      el.setAttribute(k, v);
    } else if (k in el) el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  return put(el, kids);
}
export function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, v);
  return put(el, kids);
}
export const ICON = {
  list: 'M4 5h16v2H4V5Zm0 6h16v2H4v-2Zm0 6h10v2H4v-2Z',
  ledger: 'M6 2h9l5 5v15H6V2Zm8 1.5V8h4.5L14 3.5ZM8 12h8v-1.5H8V12Zm0 3.5h8V14H8v1.5Zm0 3.5h5v-1.5H8V19Z',
  chart: 'M4 20V10h3v10H4Zm6.5 0V4h3v16h-3ZM17 20v-7h3v7h-3Z',
  me: 'M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9Zm0 2c-4.4 0-8 2.2-8 5v2h16v-2c0-2.8-3.6-5-8-5Z',
  camera: 'M9 3 7.2 5H4a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-3.2L15 3H9Zm3 5a4.5 4.5 0 1 1 0 9 4.5 4.5 0 0 1 0-9Z',
  image: 'M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm1 13h14l-4.5-6-3.5 4.5-2.5-3L5 17Z',
  plus: 'M11 4h2v7h7v2h-7v7h-2v-7H4v-2h7V4Z',
  warn: 'M12 2 1 21h22L12 2Zm-1 7h2v6h-2V9Zm0 8h2v2h-2v-2Z',
  doc: 'M6 2h9l5 5v15H6V2Zm8 1.5V8h4.5L14 3.5Z',
  pin: 'M12 2a7 7 0 0 0-7 7c0 5 7 13 7 13s7-8 7-13a7 7 0 0 0-7-7Zm0 9.5A2.5 2.5 0 1 1 12 6.5a2.5 2.5 0 0 1 0 5Z',
};
export const icon = (name) => s('svg', { class: 'ic', viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' },
  s('path', { d: ICON[name], fill: 'currentColor' }));

export let toastTimer = 0;
export function toast(msg) {
  const el = $('#toast');
  el.textContent = msg;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 3500);
}
/** A sheet in the app's style (a modal <dialog>): the answer's value, or null when dismissed (``close``); ``cls``
 * 'pick' lays many answers out in two columns, ``close`` below them. ``body``: more to fill in above the answers;
 * ``check(value)``: why that answer cannot be taken yet (said in the sheet, which stays open), or ''. */
export function ask(title, text, actions, close = t('cancel'), cls = '', { body = null, check = null } = {}) {
  return new Promise((done) => {
    const dlg = h('dialog', { class: `sheet ask ${cls}`, 'aria-labelledby': 'ask-title', 'data-ask': '' });
    const err = check ? h('p', { class: 'err', role: 'alert', 'data-ask-err': '' }) : null;
    const end = (v) => {
      const why = v && check ? check(v) : '';
      if (why) { err.textContent = why; return; }
      dlg.returnValue = v; dlg.close();
    };
    dlg.addEventListener('close', () => { dlg.remove(); done(dlg.returnValue || null); });
    dlg.addEventListener('click', (e) => { if (e.target === dlg) end(''); });  // a tap on the backdrop
    put(dlg, h('h2', { id: 'ask-title' }, title), text ? h('p', {}, text) : null, body, err,
      h('div', { class: 'btns' }, actions.map(([value, label, cls], i) => h('button', {
        class: `btn ${cls || 'ghost'}`, type: 'button', 'data-answer': value, autofocus: !i && !!body,
        onclick: () => end(value) }, label)),
      h('button', { class: 'btn ghost', type: 'button', 'data-answer': '', onclick: () => end('') }, close)));
    document.body.append(dlg);
    dlg.showModal();
  });
}
export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString(en() ? 'en-GB' : 'zh-CN', {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }) : '');
export const fmtDate = (iso) => (iso ? new Date(iso).toLocaleDateString(en() ? 'en-GB' : 'zh-CN') : '');
export const pct = (x) => (x == null ? '—' : `${Math.round(x * 100)}%`);
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();  // secure contexts only (https, localhost)
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
/** The › at the end of a line that leads elsewhere (the list's 整改跟踪 and 监控告警 lines). */
export const chev = () => h('span', { class: 'chev', 'aria-hidden': 'true' }, '›');

const MAX_SIDE = 2048;  // photos are sent with this long side at most
const JPEG_Q = 0.85;
/** Downscale to a long side of MAX_SIDE, EXIF orientation applied; null when the file is fine as it is. */
export async function downscale(blob) {
  const bmp = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  const k = Math.min(1, MAX_SIDE / Math.max(bmp.width, bmp.height));
  if (k === 1 && blob.type === 'image/jpeg' && blob.size < 2.5e6) { bmp.close(); return null; }
  const w = Math.max(1, Math.round(bmp.width * k));
  const hgt = Math.max(1, Math.round(bmp.height * k));
  let out;
  if (typeof OffscreenCanvas !== 'undefined') {
    const c = new OffscreenCanvas(w, hgt);
    const g = c.getContext('2d');
    g.imageSmoothingQuality = 'high';
    g.drawImage(bmp, 0, 0, w, hgt);
    out = await c.convertToBlob({ type: 'image/jpeg', quality: JPEG_Q });
  } else {
    const c = h('canvas', { width: w, height: hgt });
    const g = c.getContext('2d');
    g.imageSmoothingQuality = 'high';
    g.drawImage(bmp, 0, 0, w, hgt);
    out = await new Promise((res) => c.toBlob(res, 'image/jpeg', JPEG_Q));
  }
  bmp.close();
  return out;
}
