/* View: one inspection: photos with boxes, hazard cards, confirm / reject / adjust / add a missed hazard. */
import { api, ApiError, hazardById, hzName, sceneName, sevBadge } from './api.js';
import { LS, st } from './state.js';
import { en, t } from './i18n.js';
import { decSent, decisionsCard, enqueue, idb, listeners, live, localIds, notify, queueCard, queueJson, queued,
  uploadHooks } from './queue.js';
import { ask, fmtDate, fmtTime, h, icon, pct, put, toast } from './dom.js';
import { go, route } from './app.js';

export function keepRecent(ins) {  // the last 20 inspections opened, without photos, for a reload without signal
  const m = JSON.parse(LS.getItem('hazardscan.recent') || '{}');
  const { photos, ...light } = ins;
  delete m[ins.id];
  m[ins.id] = light;
  const ids = Object.keys(m);
  for (const old of ids.slice(0, Math.max(0, ids.length - 20))) delete m[old];
  LS.setItem('hazardscan.recent', JSON.stringify(m));
}
const photoSceneName = (id) => {
  const x = (st.tax.photo_scenes || []).find((p) => p.id === id);
  return x ? (en() ? x.name_en : x.name_zh) : id;
};
/** An inspection waiting in the queue, shaped like the server's (no photos yet). */
export async function localInspection(id) {
  const rec = await idb.get(id.slice('local-'.length));
  if (!rec) throw new ApiError(404, 'not_found', en() ? 'This inspection is no longer queued.' : '该检查已不在待上传队列中。');
  return { ...rec.body, id, local: true, error: rec.error, photos: [], created_at: new Date(rec.created).toISOString(),
    inspector: { display_name: st.user.display_name } };
}
/** Run a request from a button: it and its siblings are disabled and it says 保存中… until the answer. */
export async function busy(btn, fn, group = [btn]) {
  const kids = [...btn.childNodes];
  const was = group.map((b) => b.disabled);
  group.forEach((b) => { b.disabled = true; });
  btn.setAttribute('aria-busy', 'true');
  btn.replaceChildren(t('saving'));
  try {
    return await fn();
  } finally {
    group.forEach((b, i) => { b.disabled = was[i]; });
    btn.removeAttribute('aria-busy');
    btn.replaceChildren(...kids);
  }
}
/* 作废照片: the quick reasons, sent in Chinese whatever the app's language (the audit trail, like the record) */
const VOID_REASONS = [['void_r_mistake', '误拍'], ['void_r_dup', '重复'], ['void_r_blur', '模糊看不清'], ['void_r_other', '']];
/** A sheet asking why photo N is voided, saying what happens, then POST …/void: the voided photo, or null when
 * dismissed. A refusal (409: a hazard of it is being rectified) is shown in the sheet; it needs the network. */
export function voidSheet(photo, no, preset = '') {
  return new Promise((done) => {
    let result = null;
    let inflight = false;
    const dlg = h('dialog', { class: 'sheet ask', 'aria-labelledby': 'void-title', 'data-void': photo.id });
    const other = h('input', { id: 'void-other', name: 'void-other', maxLength: 200, placeholder: t('void_other_ph'),
      'aria-label': t('void_other_ph'), hidden: preset !== 'void_r_other' });
    const err = h('p', { class: 'err', role: 'alert', 'data-void-err': '' });
    const net = h('p', { class: 'warn', role: 'note', 'data-void-offline': '' }, icon('warn'), t('void_offline'));
    const ok = h('button', { class: 'btn bad on', type: 'button', 'data-act': 'void-ok', onclick: () => submit() },
      t('void_photo'));
    const cancel = h('button', { class: 'btn ghost', type: 'button', onclick: () => dlg.close() }, t('cancel'));
    const online = () => { net.hidden = navigator.onLine; ok.disabled = !navigator.onLine; };
    online();
    window.addEventListener('online', online);
    window.addEventListener('offline', online);
    const reasons = h('fieldset', { class: 'reasons' }, h('legend', {}, t('void_why')),
      VOID_REASONS.map(([key]) => h('label', {}, h('input', { type: 'radio', name: 'void-reason', value: key,
        checked: key === preset, onchange: () => {
          other.hidden = key !== 'void_r_other';
          err.textContent = '';
          if (!other.hidden) other.focus();
        } }), t(key))));
    async function submit() {
      err.textContent = '';
      const key = dlg.querySelector('input[name=void-reason]:checked')?.value;
      if (!key) { err.textContent = t('void_need'); return; }
      const reason = key === 'void_r_other' ? other.value.trim() : VOID_REASONS.find(([k]) => k === key)[1];
      if (!reason) { err.textContent = t('void_need_text'); other.focus(); return; }
      inflight = true;
      try {
        result = await busy(ok, () => api('POST', `/app/api/photos/${photo.id}/void`, { reason }), [ok, cancel]);
        inflight = false;
        dlg.close();
      } catch (ex) {
        inflight = false;
        online();  // offline, the note says so; else why it was refused (409: a hazard of it is being rectified)
        if (ex.status !== 0 || navigator.onLine) err.textContent = ex.message;
      }
    }
    dlg.addEventListener('cancel', (e) => { if (inflight) e.preventDefault(); });  // Esc while saving
    dlg.addEventListener('click', (e) => { if (e.target === dlg && !inflight) dlg.close(); });  // the backdrop
    dlg.addEventListener('close', () => {
      window.removeEventListener('online', online);
      window.removeEventListener('offline', online);
      dlg.remove();
      done(result);
    });
    put(dlg, h('h2', { id: 'void-title' }, t('void_title', no)), h('p', { 'data-void-what': '' }, t('void_what')),
      reasons, other, net, err, h('div', { class: 'btns' }, ok, cancel));
    document.body.append(dlg);
    dlg.showModal();
    (dlg.querySelector('input:checked') || dlg.querySelector('input[name=void-reason]')).focus();
  });
}
/** A finding as the inspector left it: with the decision still queued on this phone (待同步) applied. */
const decided = (f) => {
  const q = queued.find((r) => r.kind === 'dec' && r.target === f.id);
  return q ? { ...f, status: q.body.decision === 'confirm' ? 'confirmed' : 'rejected', box: q.body.box || f.box,
    note: q.body.note ?? f.note, queued: true } : f;
};
const pendingEl = (root) => root.querySelector('[data-finding][data-status=pending]');
/** Scroll to the first finding still 待确认 and mark it. */
function jumpToPending(root) {
  const el = pendingEl(root);
  if (!el) return;
  for (const old of root.querySelectorAll('.jumped')) old.classList.remove('jumped');
  el.classList.add('jumped');
  el.tabIndex = -1;
  el.scrollIntoView({ block: 'center' });
  el.focus({ preventScroll: true });
}
export async function viewInspection(id) {
  if (id.startsWith('local-') && localIds()[id]) { location.replace(`#/inspection/${localIds()[id]}`); return h('p', {}); }
  let ins;
  if (id.startsWith('local-')) ins = await localInspection(id);
  else {
    await notify();  // the decisions queued on this phone, shown on their cards
    try {
      for (let n = -1; n !== decSent;) {  // once more when a queued decision was sent meanwhile
        n = decSent;
        ins = await api('GET', `/app/api/inspections/${id}`);
      }
      keepRecent(ins);
    } catch (e) {  // no signal: what this phone saw of it last, enough to go on taking photos
      const kept = e.status === 0 && JSON.parse(LS.getItem('hazardscan.recent') || '{}')[id];
      if (!kept) throw e;
      ins = { ...kept, photos: [], offline: true };
    }
  }
  const local = Boolean(ins.local);
  const photosEl = h('div', { class: 'photos' });
  const emptyEl = h('p', { class: 'empty', 'data-empty': 'photos' });
  const paintEmpty = () => {  // 还没有照片 only when there is none: not on the server, not waiting on this phone
    if (!emptyEl.isConnected && emptyEl.dataset.painted) { listeners.delete(paintEmpty); return; }
    emptyEl.dataset.painted = '1';
    const waiting = queued.some((r) => r.kind === 'photo' && r.target === String(ins.id));
    const text = photosEl.children.length ? ''
      : ins.offline && ins.photo_count ? t('offline_photos', ins.photo_count, ins.hazard_count || 0)
        : waiting ? '' : t('no_photos');
    emptyEl.textContent = text;
    emptyEl.hidden = !text;
  };
  // 照片场景: some rules need the place (an e-bike counts as a hazard inside a lift); default: the inspection's
  const photoScenes = st.tax.photo_scenes || [];
  const dflt = st.tax.scenes?.find((x) => x.id === ins.scene)?.photo_scene;
  const sceneSel = h('select', { id: 'photo-scene', name: 'photo_scene' },
    h('option', { value: '' }, dflt ? t('scene_default', photoSceneName(dflt)) : t('scene_none')),
    photoScenes.map((x) => h('option', { value: x.id }, en() ? x.name_en : x.name_zh)));
  const pick = (capture) => h('label', { class: `btn ${capture ? 'primary' : ''} filepick` },
    icon(capture ? 'camera' : 'image'), t(capture ? 'camera' : 'gallery'),
    h('input', { type: 'file', accept: 'image/*', capture: capture ? 'environment' : null, multiple: !capture,
      'aria-label': t(capture ? 'camera' : 'gallery'), 'data-pick': capture ? 'camera' : 'gallery',
      onchange: async (e) => {
        const files = [...e.target.files];
        e.target.value = '';
        if (files.length) await enqueue(files, 'photo', ins.id, sceneSel.value || null);
      } }));

  // what is decided and what is not: the summary at the top, 完成检查, the documents' warning
  const photos = new Map();  // id -> photo (its findings change in place as the inspector decides)
  const counts = () => {
    if (ins.offline) {  // no photos without signal: the counts this phone kept
      const pending = ins.pending_count || 0;
      return { live: ins.hazard_count || 0, pending, confirmed: Math.max(0, (ins.hazard_count || 0) - pending) };
    }
    const fs = [...photos.values()].flatMap((p) => p.findings || []).map(decided);
    return { live: fs.filter((f) => f.status !== 'rejected').length,
      confirmed: fs.filter((f) => f.status === 'confirmed').length,
      pending: fs.filter((f) => f.status === 'pending').length };
  };
  const summary = h('div', { class: 'sumbar', role: 'status', 'data-summary': '', hidden: true });
  const statusPill = h('span', { class: 'st', 'data-insp-status': '' });
  const finishCard = h('section', { class: 'card', 'data-finish': '' });
  function paintSummary() {
    const c = counts();
    summary.hidden = local || (!photos.size && !ins.offline);
    summary.dataset.pending = c.pending;
    summary.replaceChildren();
    put(summary, h('span', { class: 'grow' },
      c.live ? t('sum_line', c.live, c.confirmed, c.pending) : t('sum_none')),
    c.pending && !ins.offline ? h('button', { class: 'btn primary', type: 'button', 'data-act': 'jump',
      onclick: () => jumpToPending(photosEl) }, t('go_pending')) : null);
  }
  function paintStatus() {
    const done = ins.status === 'finished';
    statusPill.className = `st ${done ? 'st-closed' : 'st-in_progress'}`;
    statusPill.textContent = t(done ? 'finished' : 'in_progress');
    statusPill.dataset.inspStatus = ins.status || 'in_progress';
    finishCard.hidden = local;
    finishCard.dataset.finish = ins.status || 'in_progress';
    const act = done
      ? h('button', { class: 'btn ghost block', type: 'button', 'data-act': 'reopen', disabled: ins.offline,
        onclick: (e) => busy(e.currentTarget, () => api('POST', `/app/api/inspections/${ins.id}/reopen`))
          .then(setIns, (ex) => toast(ex.message)) }, t('reopen_insp'))
      : h('button', { class: 'btn primary block', type: 'button', 'data-act': 'finish', disabled: ins.offline,
        onclick: (e) => finish(e.currentTarget) }, t('finish'));
    finishCard.replaceChildren(h('h2', {}, t('finish')),
      h('p', { class: 'muted small' }, done ? t('finished_at', fmtTime(ins.finished_at)) : t('finish_hint')), act);
  }
  function setIns(r) {  // the server's answer to 完成检查 / 继续检查
    Object.assign(ins, { status: r.status, finished_at: r.finished_at, pending_count: r.pending_count });
    keepRecent(ins);
    paintStatus();
  }
  function changed() {  // a decision, a hazard added, a photo arrived
    const c = counts();
    if (!ins.offline) Object.assign(ins, { pending_count: c.pending, hazard_count: c.live, photo_count: photos.size });
    if (!local && !ins.offline) keepRecent(ins);
    paintSummary();
  }
  async function finish(btn, force = false) {
    try {
      setIns(await busy(btn, () => api('POST', `/app/api/inspections/${ins.id}/finish`, { force })));
      toast(t('finished_toast'));
    } catch (ex) {
      if (ex.status !== 409 || force) { toast(ex.message); return; }
      const n = counts().pending || Number(ex.message.match(/\d+/)?.[0]) || '';
      const a = await ask(t('still_pending', n), t('pending_why'),
        [['jump', t('go_pending'), 'primary'], ['force', t('finish_anyway')]]);
      if (a === 'jump') jumpToPending(photosEl);
      else if (a === 'force') await finish(finishCard.querySelector('[data-act=finish]'), true);
    }
  }

  /* 照片 N as in 现场检查记录: 照片 1 is the oldest photo (the server's order), though the newest is shown first, right
   * under 拍照, where the inspector looks for the AI's marks of the photo just taken */
  const order = [];  // photo ids, oldest first
  const cardOf = (pid) => photosEl.querySelector(`[data-photo="${pid}"]`);
  const renumber = () => order.forEach((pid, i) => {
    const el = cardOf(pid);
    if (!el) return;
    el.dataset.photoNo = i + 1;
    el.querySelector('[data-photo-title]').textContent = t('photo_n', i + 1);
  });
  async function voidPhoto(p, preset) {  // 作废照片: the card leaves, the counts at the top follow
    if (await voidSheet(p, order.indexOf(p.id) + 1, preset)) drop(p, t('void_done'));
  }
  /* 重拍并替换: the new photo is queued (offline too) once chosen, judged in the old one's 照片场景 (not the one the
   * picker shows now), then the old one voided; without the network, or refused (a hazard of it is being
   * rectified), the old one stays and the toast says why. Where the old photo holds confirmed hazards, which voiding
   * takes out of the ledger, a sheet asks first: 替换, 两张都保留 (the new one only added) or 取消 (nothing sent). */
  async function retake(p, file, locked) {
    const held = (p.findings || []).map(decided).filter((f) => f.status === 'confirmed');
    if (held.length) {
      const names = [...new Set(held.map(hzName))].join(en() ? ', ' : '、');
      const no = order.indexOf(p.id) + 1;
      const answer = await (locked
        ? ask(t('retake_locked_title', no), t('retake_locked'), [['keep', t('retake_add'), 'primary']])
        : ask(t('retake_ask', no), t('retake_what', held.length, names),
          [['replace', t('retake_replace'), 'bad on'], ['keep', t('retake_keep')]]));
      if (!answer) return;
      if (answer === 'keep') {
        await enqueue([file], 'photo', ins.id, p.scene || sceneSel.value || null);
        toast(t('retake_both'));
        return;
      }
    }
    await enqueue([file], 'photo', ins.id, p.scene || sceneSel.value || null);
    try {
      if (!navigator.onLine) throw new ApiError(0, 'network', '');
      await api('POST', `/app/api/photos/${p.id}/void`, { reason: '模糊看不清（已重拍替换）' });
    } catch (ex) {
      toast(t('retake_kept', ex.status === 0 ? t('void_offline') : ex.message));
      return;
    }
    drop(p, t('retake_done'));
  }
  function drop(p, msg) {
    const el = cardOf(p.id);
    const next = el?.nextElementSibling || el?.previousElementSibling;
    photos.delete(p.id);
    order.splice(order.indexOf(p.id), 1);
    el?.remove();
    renumber();
    changed();
    paintEmpty();
    toast(msg);
    const title = next?.querySelector('[data-photo-title]');
    if (title) { title.tabIndex = -1; title.focus({ preventScroll: true }); }  // not lost on <body>
  }
  const addPhoto = (p) => {
    if (p.voided) return;
    const old = cardOf(p.id);
    photos.set(p.id, p);
    if (!order.includes(p.id)) order.push(p.id);
    const el = photoCard(p, changed, { onVoid: voidPhoto, onRetake: retake });
    if (old) old.replaceWith(el); else photosEl.prepend(el);
    renumber();
    paintEmpty();
  };
  const hook = (rec, photo) => {
    if (!photosEl.isConnected) { uploadHooks.photo.delete(hook); return; }
    if (rec.target === String(ins.id) && photo?.id) {
      addPhoto(photo);
      if (ins.status === 'finished') { ins.status = 'in_progress'; ins.finished_at = null; paintStatus(); }  // reopened
      changed();
    }
  };
  uploadHooks.photo.add(hook);
  const created = (rec, made) => {  // the server has created this (local) inspection: show the real one
    if (!photosEl.isConnected) { uploadHooks.insp.delete(created); return; }
    if (`local-${rec.key}` === ins.id) location.replace(`#/inspection/${made.id}`);
  };
  if (local) uploadHooks.insp.add(created);
  if (ins.offline) window.addEventListener('online', () => { if (photosEl.isConnected) route(); }, { once: true });
  for (const p of ins.photos || []) addPhoto(p);
  listeners.add(paintEmpty);
  paintEmpty();
  paintSummary();
  paintStatus();
  const u = ins.unit;
  const docLink = (path, label, pdf) => (ins.offline  // the documents come from the server
    ? h('button', { class: 'btn ghost', type: 'button', disabled: true, 'data-doc': path }, icon('doc'), label)
    : h('a', { class: 'btn ghost', href: `/app/inspections/${ins.id}/${path}`, target: pdf ? null : '_blank',
      rel: 'noopener', download: pdf ? `${path.replace('.pdf', '')}-${ins.id}.pdf` : null, 'data-doc': path,
      onclick: async (e) => {  // while findings are 待确认, say so before the document opens
        const a = e.currentTarget;
        const n = counts().pending;
        if (!n || a.dataset.go) return;
        e.preventDefault();
        const ans = await ask(t('still_pending', n), t('doc_pending'),
          [['jump', t('go_pending'), 'primary'], ['open', t('open_anyway')]]);
        if (ans === 'jump') jumpToPending(photosEl);
        else if (ans === 'open') { a.dataset.go = '1'; a.click(); delete a.dataset.go; }
      } }, icon('doc'), label));
  return h('div', {},
    h('section', { class: 'card' },
      h('h1', {}, u.name),
      h('div', { class: 'muted' }, u.address),
      u.credit_code ? h('div', { class: 'muted small' }, `${t('credit')}: ${u.credit_code}`) : null,
      h('div', { class: 'kpis' }, local ? null : statusPill, h('span', { class: 'pill' }, sceneName(ins.scene)),
        h('span', { class: 'pill' }, `${t('inspector')}: ${ins.inspector?.display_name || ''}`),
        h('span', { class: 'pill' }, fmtTime(ins.created_at)),
        ins.location ? h('span', { class: 'pill' }, icon('pin'),
          `${(+ins.location.lat).toFixed(4)}, ${(+ins.location.lon).toFixed(4)}`) : null),
      ins.camera_event_id ? h('a', { class: 'evfrom', href: '#/events', 'data-camera-event': ins.camera_event_id },
        icon('camera'), t('ev_from'), h('span', { 'aria-hidden': 'true' }, '›')) : null,
      ins.report_id ? h('a', { class: 'evfrom', href: '#/reports?status=verified', 'data-report-from': ins.report_id },
        icon('image'), t('rp_from'), h('span', { 'aria-hidden': 'true' }, '›')) : null,
      local ? h('p', { class: ins.error ? 'err' : 'warn', 'data-local': 'pending' },
        ins.error ? t('q_fail', ins.error) : t('insp_pending')) : null,
      ins.offline ? h('p', { class: 'warn', 'data-offline': 'view' }, t('offline_view')) : null),
    summary,
    photoScenes.length ? h('div', { class: 'row scene-row' }, h('label', { for: 'photo-scene' }, t('photo_scene')), sceneSel)
      : null,
    h('div', { class: 'fab-row' }, pick(true), pick(false)),
    queueCard('photo', ins.id),
    ins.offline ? decisionsCard(ins.id) : null,
    emptyEl, photosEl,
    local ? null : finishCard,
    local ? null : h('section', { class: 'card' }, h('h2', {}, t('docs')),
      ins.offline ? h('p', { class: 'muted small' }, t('docs_offline')) : null, h('div', { class: 'docs' },
      docLink('record', t('record')), docLink('record.pdf', `${t('record')} ${t('pdf')}`, true),
      docLink('notice', t('notice')), docLink('notice.pdf', `${t('notice')} ${t('pdf')}`, true))));
}

const overlap = (a, b) => Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left))
  * Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
/** Box labels that would cover one another (boxes close together) move apart. Six places for each: above, below
 * or inside the top of its box, from its left or its right edge. Each label in turn, while it covers another or
 * leaves the photo, takes the place that covers least (and stays inside); rounds until none moves, so a label can
 * make room for another. Where no place is clear they overlap least. */
export function spreadLabels(frame) {
  const fr = frame.getBoundingClientRect();
  if (!fr.width) return;  // not on screen yet: the ResizeObserver calls again
  const boxes = [...frame.querySelectorAll('.box[data-box]')];
  const place = (box, [y, right]) => {
    const span = box.firstElementChild;
    const [mwLeft, mwRight] = (span.dataset.mw || '').split(' ');
    box.classList.remove('low-y', 'in-y', 'right-x');
    if (y) box.classList.add(y);
    box.classList.toggle('right-x', right);
    span.style.maxWidth = `${right ? mwRight : mwLeft}%`;
    return span.getBoundingClientRect();
  };
  const outside = (r) => r.left < fr.left - 0.5 || r.right > fr.right + 0.5 || r.top < fr.top - 0.5
    || r.bottom > fr.bottom + 0.5;
  const PLACES = ['', 'low-y', 'in-y'].flatMap((y) => [[y, false], [y, true]]);
  const at = boxes.map((b) => [['low-y', 'in-y'].find((c) => b.classList.contains(c)) || '',
    b.classList.contains('right-x')]);
  const rects = boxes.map((b) => b.firstElementChild.getBoundingClientRect());  // where drawBoxes put them
  for (let round = 0; round < 4; round += 1) {
    let moved = false;
    boxes.forEach((box, i) => {
      const cost = (r) => (outside(r) ? 1e9 : 0) + rects.reduce((sum, p, j) => sum + (j === i ? 0 : overlap(r, p)), 0);
      let best = { at: at[i], r: rects[i], cost: cost(rects[i]) };
      if (!best.cost) return;
      for (const p of PLACES) {
        const r = place(box, p);
        const c = cost(r);
        if (c < best.cost) best = { at: p, r, cost: c };
        if (!c) break;
      }
      place(box, best.at);
      moved ||= best.at !== at[i];
      at[i] = best.at;
      rects[i] = best.r;
    });
    if (!moved) break;
  }
}
/* One photo: the image with boxes, its warnings, a card per finding, confirm / reject / adjust / add. */
export function photoCard(photo, changed = () => {}, { onVoid, onRetake } = {}) {
  const ui = { mode: 'view', fid: null, box: null };  // mode: view | adjust | add
  const card = h('section', { class: 'card', 'data-photo': photo.id, 'aria-labelledby': `ph-${photo.id}` });
  // 重拍并替换: the camera (or the file chooser); nothing changes until a photo is chosen
  const retakeBtn = (cls) => h('label', { class: `linkbtn ${cls} filepick`, 'data-act': 'retake' }, t('retake_photo'),
    h('input', { type: 'file', accept: 'image/*', capture: 'environment', 'aria-label': t('retake_photo'),
      onchange: (e) => {
        const [file] = e.target.files;
        e.target.value = '';
        // rectification under way on a hazard of it: the server refuses to void it (the sheet says so first)
        const locked = (photo.findings || []).map(decided).some((f) => f.status === 'confirmed'
          && items[f.ledger_item_id] && items[f.ledger_item_id].status !== 'open');
        if (file) onRetake(photo, file, locked).catch((ex) => toast(ex.message));
      } }));
  // 照片 N (set by the inspection, as numbered in 现场检查记录), 重拍并替换 and 作废照片, out of the way of 确认 / 误报
  const head = h('div', { class: 'photo-head' }, h('h2', { id: `ph-${photo.id}`, 'data-photo-title': '' }),
    onVoid ? h('span', { class: 'acts' }, onRetake ? retakeBtn('quiet') : null,
      h('button', { class: 'linkbtn quiet', type: 'button', 'data-act': 'void',
        onclick: () => onVoid(photo) }, t('void_photo'))) : null);
  const W = photo.width || 1;
  const H = photo.height || 1;
  const frame = h('div', { class: 'photo' });
  const img = h('img', { src: photo.original_url, alt: en() ? 'inspection photo' : '检查照片', loading: 'lazy',
    width: W, height: H });
  const layer = h('div', {});
  frame.append(img, layer);
  const place = (el, b) => {
    el.style.left = `${(b[0] / W) * 100}%`; el.style.top = `${(b[1] / H) * 100}%`;
    el.style.width = `${((b[2] - b[0]) / W) * 100}%`; el.style.height = `${((b[3] - b[1]) / H) * 100}%`;
  };
  function drawBoxes() {
    const kids = [];
    for (const f of (photo.findings || []).map(decided)) {
      if (ui.mode === 'adjust' && f.id === ui.fid) continue;
      // a pending suspicion, or a finding of a doubtful photo: dashed and labelled 疑似 until the inspector confirms
      const doubt = f.awaiting_confirmation && f.status === 'pending';
    const li = f.status === 'confirmed' && items[f.ledger_item_id];
    const locked = li && li.status !== 'open';  // in rectification: the server refuses another decision
      const mark = doubt ? `${t(f.suspected ? 'suspected' : 'unconfirmed')} ` : '';
      const [x0, y0, x1, y1] = f.box;
      // the label inside the photo: above the box, else below it, else inside its top; on the side with more
      // room, cut short with … (the whole name in its title)
      const lh = (24 * W) / H / (frame.clientWidth || 320);
      const y = y0 / H >= lh ? '' : y1 / H <= 1 - lh ? ' low-y' : ' in-y';
      const right = x0 + x1 > W;
      const label = `${mark}${hzName(f)}${f.confidence != null ? ` ${pct(f.confidence)}` : ''}`;
      const mwLeft = (100 * (W - x0)) / Math.max(x1 - x0, 1);  // the label's widest, in % of the box, from its left
      const mwRight = (100 * x1) / Math.max(x1 - x0, 1);  // or from its right edge
      const el = h('div', { class: `box b-${f.severity}${f.status === 'rejected' ? ' rejected' : ''}${
        doubt ? ' doubt' : ''}${y}${right ? ' right-x' : ''}`, 'data-box': f.id },
      h('span', { title: label, 'data-mw': `${mwLeft} ${mwRight}`, style: { maxWidth: `${right ? mwRight : mwLeft}%` } },
        label));
      place(el, f.box);
      kids.push(el);
    }
    if (ui.box) {
      const el = h('div', { class: 'box new sel' });
      place(el, ui.box);
      kids.push(el);
      [[0, 1], [2, 1], [0, 3], [2, 3]].forEach(([xi, yi]) => {
        const hd = h('div', { class: 'handle', 'data-corner': `${xi}${yi}`, role: 'presentation' });
        hd.style.left = `${(ui.box[xi] / W) * 100}%`;
        hd.style.top = `${(ui.box[yi] / H) * 100}%`;
        hd.addEventListener('pointerdown', (e) => startDrag(e, xi, yi));
        kids.push(hd);
      });
    }
    layer.replaceChildren(...kids);
    spreadLabels(frame);
  }
  new ResizeObserver(() => spreadLabels(frame)).observe(frame);  // turned, or the photo's size came late
  const toImg = (e) => {
    const r = frame.getBoundingClientRect();
    return [Math.min(W, Math.max(0, ((e.clientX - r.left) / r.width) * W)),
      Math.min(H, Math.max(0, ((e.clientY - r.top) / r.height) * H))];
  };
  const norm = (b) => [Math.min(b[0], b[2]), Math.min(b[1], b[3]), Math.max(b[0], b[2]), Math.max(b[1], b[3])]
    .map((v) => Math.round(v));
  function startDrag(e, xi, yi) {  // move one corner of the box being edited
    e.preventDefault(); e.stopPropagation();
    frame.setPointerCapture(e.pointerId);  // the handle is redrawn while it moves
    const move = (ev) => { const [x, y] = toImg(ev); ui.box[xi] = x; ui.box[yi] = y; drawBoxes(); };
    const up = () => { ui.box = norm(ui.box); drawBoxes(); frame.removeEventListener('pointermove', move);
      frame.removeEventListener('pointerup', up); };
    frame.addEventListener('pointermove', move);
    frame.addEventListener('pointerup', up);
  }
  frame.addEventListener('pointerdown', (e) => {  // draw (or redraw) a box
    if (!frame.classList.contains('drawing') || e.target.classList.contains('handle')) return;
    e.preventDefault();
    frame.setPointerCapture(e.pointerId);
    const [x0, y0] = toImg(e);
    const before = ui.box;
    ui.box = [x0, y0, x0, y0];
    const move = (ev) => { const [x, y] = toImg(ev); ui.box = [x0, y0, x, y]; drawBoxes(); };
    const up = () => {
      frame.removeEventListener('pointermove', move); frame.removeEventListener('pointerup', up);
      const b = norm(ui.box);
      ui.box = (b[2] - b[0]) * (b[3] - b[1]) >= (W * H) / 2500 ? b : before;  // a tap is not a box
      drawBoxes(); renderBelow();
    };
    frame.addEventListener('pointermove', move);
    frame.addEventListener('pointerup', up);
  });

  const below = h('div', {});
  const items = {};  // ledger item id -> LedgerItem: the state shown on a confirmed finding's card
  async function ledgerOf(id, say) {
    items[id] = null;
    try {
      const it = items[id] = await api('GET', `/app/api/ledger/${id}`, null, { noLogin: true });
      if (say) toast(t('in_ledger', fmtDate(it.deadline)));
      renderBelow();
    } catch { /* offline: the card goes without it */ }
  }
  /** 确认 / 误报 (with the adjusted box, with the note): the card's buttons wait, the tapped one says 保存中…
   * Without signal (or while one waits for it) the decision is queued on the phone and sent when online. */
  async function decide(f, decision, btn, { box, note } = {}) {
    const body = { decision, ...(box && { box }), ...(note != null && { note }) };
    const o = photo.findings.find((x) => x.id === f.id);  // f: as shown, with a queued decision
    let nf = null;
    try {
      if (!f.queued) {
        nf = await busy(btn, () => api('POST', `/app/api/findings/${f.id}/decision`, body),
          [...btn.closest('article').querySelectorAll('button')]);
      }
    } catch (ex) {
      if (ex.status) { toast(ex.message); return; }  // only no signal queues; a refusal is said now
    }
    if (nf) {
      if (nf.ledger_item_id && o.status !== 'confirmed') ledgerOf(nf.ledger_item_id, true);
      Object.assign(o, nf);
    } else {
      await queueJson('dec', `dec-${st.user.id}-${f.id}`, f.id, `${t('photo_n', card.dataset.photoNo || 1)} · ${
        hzName(f)}`, body, { insp: String(photo.inspection_id) });
      if (!f.queued) toast(t('dec_queued'));
    }
    ui.mode = 'view'; ui.fid = null; ui.box = null;
    frame.classList.remove('drawing');
    drawBoxes(); renderBelow(); changed();
  }
  const synced = (rec, nf) => {  // a queued decision was sent (nf), or refused: the card shows the server's
    if (!card.isConnected) { uploadHooks.dec.delete(synced); return; }
    const f = photo.findings?.find((x) => x.id === rec.target);
    if (!f) return;
    Object.assign(f, nf);
    delete items[f.ledger_item_id];  // read again: new, or moved on (整改中, which refused it)
    if (ui.mode === 'view') { drawBoxes(); renderBelow(); }
    changed();
  };
  uploadHooks.dec.add(synced);
  const closeEdit = () => {
    ui.mode = 'view'; ui.fid = null; ui.box = null; frame.classList.remove('drawing'); drawBoxes(); renderBelow();
  };
  function noteForm(f) {  // 备注: saved with the decision (a pending one is confirmed with it)
    const pending = f.status === 'pending';
    const area = h('textarea', { id: `fnote-${f.id}`, name: 'finding-note', maxLength: 1000,
      placeholder: t('note_ph'), value: f.note || '' });
    queueMicrotask(() => area.focus());
    return h('div', { class: 'note-form', 'data-note-form': f.id },
      h('label', { for: `fnote-${f.id}` }, t('note')), area,
      h('div', { class: 'btns' },
        h('button', { class: 'btn primary', type: 'button', 'data-act': 'save-note', onclick: (e) => decide(f,
          f.status === 'rejected' ? 'reject' : 'confirm', e.currentTarget, { note: area.value.trim() }) },
        t(pending ? 'save_confirm' : 'save')),
        h('button', { class: 'btn ghost', type: 'button', onclick: closeEdit }, t('cancel'))));
  }
  function findingCard(f) {
    const stKey = { pending: 'st_pending', confirmed: 'st_confirmed', rejected: 'st_rejected' }[f.status];
    const editing = ui.mode === 'adjust' && ui.fid === f.id;
    const noting = ui.mode === 'note' && ui.fid === f.id;
    const hz = hazardById(f.hazard_id);
    const doubt = f.awaiting_confirmation && f.status === 'pending';
    const li = f.status === 'confirmed' && items[f.ledger_item_id];
    const locked = li && li.status !== 'open';  // in rectification: the server refuses another decision
    return h('article', { class: `hz bl-${f.severity} st-${f.status}${doubt ? ' doubt' : ''}`, 'data-finding': f.id,
      'data-status': f.status, 'data-hazard': f.hazard_id, 'data-source': f.source,
      'data-suspected': String(Boolean(f.suspected)), 'data-unconfirmed': String(Boolean(f.unconfirmed)) },
    h('div', { class: 'row' }, sevBadge(f.severity), h('h3', { class: 'grow' }, hzName(f)),
      h('span', { class: `st ${f.status === 'confirmed' ? 'st-closed' : f.status === 'rejected' ? '' : 'st-open'}` },
        t(stKey))),
    h('div', { class: 'row conf' },
      f.source === 'inspector' ? t('by_inspector') : `${t('conf')} ${pct(f.confidence)}`,
      f.queued ? h('span', { class: 'pill sync', 'data-mark': 'queued' }, t('sync_pending')) : null,
      f.suspected ? h('span', { class: 'pill doubt', 'data-mark': 'suspected' }, t('suspected')) : null,
      f.unconfirmed ? h('span', { class: 'pill doubt', 'data-mark': 'unconfirmed' }, t('unconfirmed')) : null,
      li ? h('span', { class: 'pill', 'data-ledger': li.status }, t('ledger_st', t(`s_${li.status}`))) : null,
      // the model's class name (English, snake_case) means something to an English reader only
      f.detector_class && en() ? h('span', { class: 'muted small', 'data-class': f.detector_class },
        f.detector_class) : null),
    doubt ? h('p', { class: 'awaiting', 'data-awaiting': 'true' }, t('awaiting')) : null,
    h('dl', {}, h('dt', {}, t('basis')), h('dd', { lang: 'zh-CN' }, f.legal_basis || hz?.legal_basis || ''),
      h('dt', {}, t('advice')), h('dd', {}, (en() && (f.advice_en || hz?.advice_en)) || f.advice_zh || hz?.advice_zh || ''),
      f.note ? [h('dt', {}, t('note')), h('dd', { 'data-note': '' }, f.note)] : null),
    locked ? h('p', { class: 'muted small', 'data-locked': '' }, t('locked', t(`s_${li.status}`)))
      : noting ? noteForm(f) : h('button', { class: 'linkbtn', type: 'button', 'data-act': 'note', onclick: () => {
      closeEdit(); ui.mode = 'note'; ui.fid = f.id; renderBelow();
    } }, f.note ? t('edit_note') : [icon('plus'), t('add_note')]),
    editing ? h('div', { class: 'btns' },
      h('button', { class: 'btn primary', type: 'button', onclick: (e) => decide(f, 'confirm', e.currentTarget,
        { box: ui.box }) }, t('save_confirm')),
      h('button', { class: 'btn ghost', type: 'button', onclick: closeEdit }, t('cancel')))
      : noting || locked ? null : h('div', { class: 'btns' },
        h('button', { class: `btn ok${f.status === 'confirmed' ? ' on' : ''}`, type: 'button', 'data-act': 'confirm',
          'aria-pressed': String(f.status === 'confirmed'), onclick: (e) => decide(f, 'confirm', e.currentTarget) },
        t('confirm')),
        h('button', { class: `btn bad${f.status === 'rejected' ? ' on' : ''}`, type: 'button', 'data-act': 'reject',
          'aria-pressed': String(f.status === 'rejected'), onclick: (e) => decide(f, 'reject', e.currentTarget) },
        t('reject')),
        h('button', { class: 'btn ghost', type: 'button', 'data-act': 'adjust', onclick: () => {
          ui.mode = 'adjust'; ui.fid = f.id; ui.box = [...f.box]; frame.classList.add('drawing');
          drawBoxes(); renderBelow(); frame.scrollIntoView({ block: 'nearest' });
        } }, t('adjust'))));
  }
  function addForm() {
    const all = st.tax.hazards;
    const domains = [...new Set(all.map((x) => x.domain))];
    const sel = h('select', { id: `hz-${photo.id}`, name: 'hazard', required: true });
    const fill = (q) => {
      const ql = q.trim().toLowerCase();
      sel.replaceChildren(h('option', { value: '' }, t('choose')), ...domains.map((d) => {
        const hs = all.filter((x) => x.domain === d && (!ql || `${x.name_zh} ${x.name_en} ${x.id}`.toLowerCase()
          .includes(ql)));
        return hs.length ? h('optgroup', { label: d }, hs.map((x) => h('option', { value: x.id },
          `${hzName(x)}${x.detectable ? '' : `（${t('not_detectable')}）`}`))) : '';
      }));
    };
    fill('');
    const note = h('textarea', { id: `note-${photo.id}`, name: 'note', maxLength: 1000 });
    const err = h('p', { class: 'err', role: 'alert' });
    return h('div', { class: 'hz add-form' },
      h('p', { class: 'muted' }, ui.box ? '' : t('draw_hint')),
      h('label', { for: `q-${photo.id}` }, t('search')),
      h('input', { id: `q-${photo.id}`, type: 'search', oninput: (e) => fill(e.target.value) }),
      h('label', { for: `hz-${photo.id}` }, t('pick_hazard')), sel,
      h('label', { for: `note-${photo.id}` }, t('note'), ' ', h('span', { class: 'hint' }, `(${t('optional')})`)),
      note, err,
      h('div', { class: 'btns' },
        h('button', { class: 'btn primary', type: 'button', 'data-act': 'save-missed', onclick: async (e) => {
          if (!ui.box) { err.textContent = t('need_box'); return; }
          if (!sel.value) { err.textContent = t('need_hazard'); return; }
          const btn = e.currentTarget;
          try {
            const f = await busy(btn, () => api('POST', `/app/api/photos/${photo.id}/findings`,
              { hazard_id: sel.value, box: ui.box, note: note.value.trim() }), [...btn.parentNode.children]);
            (photo.findings ||= []).push(f);
            ui.mode = 'view'; ui.box = null; frame.classList.remove('drawing');
            drawBoxes(); renderBelow(); changed();
            if (f.ledger_item_id) ledgerOf(f.ledger_item_id, true); else toast(t('saved'));
          } catch (ex) { err.textContent = ex.message; }
        } }, t('save')),
        h('button', { class: 'btn ghost', type: 'button', onclick: () => {
          ui.mode = 'view'; ui.box = null; frame.classList.remove('drawing'); drawBoxes(); renderBelow();
        } }, t('cancel'))));
  }
  function renderBelow() {
    const fs = (photo.findings || []).map(decided);
    for (const f of fs) {
      if (f.status === 'confirmed' && f.ledger_item_id && !(f.ledger_item_id in items)) ledgerOf(f.ledger_item_id);
    }
    const live = fs.filter((f) => f.status !== 'rejected').length;
    const waiting = fs.filter((f) => f.awaiting_confirmation && f.status === 'pending').length;
    below.replaceChildren(
      ...(ui.mode === 'adjust' ? [h('p', { class: 'muted', 'data-hint': 'adjust' }, t('adjust_hint'))] : []),
      ...(photo.warnings || []).map((w, i) => h('div', { class: 'warn', role: 'note' }, icon('warn'),
        h('div', {}, h('strong', {}, `${t('retake')}：`), en() ? w.message_en : w.message_zh,
          onVoid && !i ? h('div', { class: 'row' }, onRetake ? retakeBtn('') : null,
            h('button', { class: 'linkbtn', type: 'button', 'data-act': 'void-retake',
              onclick: () => onVoid(photo, 'void_r_blur') }, t('void_retake'))) : null))),
      h('div', { class: 'row spread', style: { marginTop: '10px' } },
        h('strong', {}, live ? t('found', live) : t('found0'),
          waiting ? h('span', { class: 'pill doubt', 'data-waiting': waiting }, t('n_awaiting', waiting)) : null,
          photo.scene ? h('span', { class: 'pill', 'data-scene': photo.scene }, photoSceneName(photo.scene)) : null),
        h('span', { class: 'muted small' },
          photo.taken_at ? h('span', { 'data-taken': photo.taken_at, 'data-taken-source': photo.taken_at_source || '' },
            t('taken', photo.taken_at.replace('T', ' ')), photo.taken_at_source === 'client' ? t('taken_client')
              : photo.taken_at_source === 'camera' ? t('taken_camera')
                : photo.taken_at_source === 'report' ? t('taken_report') : '',
            ' · ') : null,
          `${t('model')} ${photo.model?.version || photo.model?.id || t('model_na')}`)),
      ui.mode === 'add' ? addForm() : h('div', { class: 'btns' },
        h('button', { class: 'btn ghost', type: 'button', 'data-act': 'add-missed', onclick: () => {
          ui.mode = 'add'; ui.fid = null; ui.box = null; frame.classList.add('drawing'); drawBoxes(); renderBelow();
          frame.scrollIntoView({ block: 'nearest' });
        } }, icon('plus'), t('add_missed'))),
      ...fs.map(findingCard));
  }
  drawBoxes();
  renderBelow();
  card.append(head, frame, below);
  return card;
}
