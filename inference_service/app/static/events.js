/* View: the organisation's camera events (监控告警) and their line on the inspections list. 转为检查 makes an
 * inspection with the event's frame as its photo; its finding waits for the inspector's 确认 like any other.
 * 忽略 says why one needs none (误报 / 重复 / 已现场处置 / 其他); 撤销忽略 puts it back among those to look at. */
import { api, hzName, sevBadge, taxonomy } from './api.js';
import { en, t } from './i18n.js';
import { ask, chev, fmtTime, h, icon, put, toast } from './dom.js';
import { go } from './app.js';
import { busy } from './inspection.js';
import { pic } from './ledger.js';

/** The inspections list's line to the events, once the API says there are cameras and events: how many wait for
 * someone to look at them (待处理), or that none does. */
export function eventsLine() {
  const a = h('a', { class: 'card evline', href: '#/events', hidden: true, 'data-events-line': '' });
  (async () => {
    const quiet = { noLogin: true };  // a line beside the list: an ended session is for the screen to tell
    const r = await api('GET', '/app/api/events?review=none&limit=1', null, quiet);
    const n = r.total;
    if (!r.cameras || (!n && !(await api('GET', '/app/api/events?limit=1', null, quiet)).total)) return;
    put(a, icon('warn'), h('span', { class: 'grow' }, t('ev_title'), ' · ',
      h('span', { class: n ? 'evn' : 'muted', 'data-todo': n }, t(n ? 'ev_todo_n' : 'ev_todo_0', n))), chev());
    a.classList.toggle('quiet', !n);
    a.hidden = false;
  })().catch(() => { /* offline, or no answer: no line */ });
  return a;
}

/** 转为检查 (of a 待处理 or an 已忽略 event: an inspection overrules the dismissal): POST, asking for the scene when the
 * camera's does not imply one; then the new inspection. */
async function inspect(e, btn, err, scene) {
  err.textContent = '';
  try {
    const ins = await busy(btn, () => api('POST', `/app/api/events/${e.id}/inspection`, scene ? { scene } : {}),
      [...btn.parentNode.querySelectorAll('button')]);
    go(`#/inspection/${ins.id}`);
  } catch (ex) {
    if (ex.code !== 'scene_required' || scene) { err.textContent = ex.message; return; }
    const scenes = (await taxonomy()).scenes || [];
    const pick = await ask(t('ev_scene'), t('ev_scene_why'),
      scenes.map((sc) => [sc.id, en() ? sc.name_en : sc.name_zh]), t('cancel'), 'pick');
    if (pick) await inspect(e, btn, err, pick);
  }
}

const REASONS = ['false_alarm', 'duplicate', 'handled', 'other'];
const reasonName = (r) => t(`ev_r_${r}`);
const shortTime = (iso) => new Date(iso).toLocaleString(en() ? 'en-GB' : 'zh-CN', { month: '2-digit',
  day: '2-digit', hour: '2-digit', minute: '2-digit' });

/** 忽略: a sheet names the event and asks why (误报 / 重复 / 已现场处置 / 其他, which needs the note), then POST
 * …/dismiss. A 409 (made an inspection meanwhile, by a colleague): the server's why, and the card as it now is. */
async function dismiss(e, btn, err, changed) {
  err.textContent = '';
  const note = h('input', { id: 'ev-note', name: 'ev-note', maxLength: 500, autocomplete: 'off' });
  const what = h('b', { 'data-ask-event': '' }, hzName(e), ' · ', t('ev_camera', e.camera_id), ' · ',
    shortTime(e.started_at));
  const reason = await ask(t('ev_dis_title'), [what, h('br'), t('ev_dis_why')], REASONS.map((r) => [r, reasonName(r)]),
    t('cancel'), 'pick', { body: h('label', { class: 'ev-note' }, t('ev_note'), note),
      check: (r) => (r === 'other' && !note.value.trim() ? (note.focus(), t('ev_note_need')) : '') });
  if (!reason) return;
  try {
    changed(await busy(btn, () => api('POST', `/app/api/events/${e.id}/dismiss`, { reason, note: note.value.trim() }),
      [...btn.parentNode.querySelectorAll('button')]), t('ev_dis_done', reasonName(reason)));
  } catch (ex) {
    err.textContent = ex.message;
    if (ex.status === 409) changed(null, ex.message, e.id);
  }
}

async function undismiss(e, btn, err, changed) {
  err.textContent = '';
  try {
    changed(await busy(btn, () => api('POST', `/app/api/events/${e.id}/undismiss`)), t('ev_undone'));
  } catch (ex) { err.textContent = ex.message; }
}

/** ``changed(event, msg)``: the event as the server now has it, after 忽略 / 撤销忽略 on this card;
 * ``changed(null, msg, id)``: the server refused, the card is stale (the list is fetched again). */
function eventCard(e, changed) {
  const name = hzName(e);
  const err = h('p', { class: 'err', role: 'alert' });
  const acts = h('span', { class: 'acts' });
  let said = null;  // what became of it: 已忽略 / 已转检查, by whom and when
  const by = e.reviewed_at ? t('ev_by', e.reviewed_by, shortTime(e.reviewed_at)) : '';
  if (e.review === 'dismissed') {
    said = h('p', { class: 'ev-review', 'data-review-line': '' }, h('b', {}, t('ev_dismissed', reasonName(e.review_reason))),
      by,
      e.review_note ? h('span', { 'data-review-note': '' }, t('ev_quote', e.review_note)) : null);
    put(acts, h('button', { class: 'linkbtn', type: 'button', 'data-act': 'undismiss',
      onclick: (x) => undismiss(e, x.currentTarget, err, changed) }, t('ev_undismiss')));
    if (e.has_frame && !e.inspection_id) {
      put(acts, h('button', { class: 'btn primary', type: 'button', 'data-act': 'inspect',
        onclick: (x) => inspect(e, x.currentTarget, err) }, t('ev_inspect')));
    }
  } else {
    if (e.review === 'inspection') said = h('p', { class: 'ev-review', 'data-review-line': '' }, h('b', {}, t('ev_made')), by);
    else if (!e.has_frame) said = h('p', { class: 'muted small', 'data-no-frame': '' }, t('ev_no_frame'));
    if (!e.review && !e.inspection_id) {
      put(acts, h('button', { class: 'btn ghost', type: 'button', 'data-act': 'dismiss',
        onclick: (x) => dismiss(e, x.currentTarget, err, changed) }, t('ev_dismiss')));
    }
    if (e.inspection_id) {
      put(acts, h('a', { class: 'btn', href: `#/inspection/${e.inspection_id}`, 'data-act': 'view-insp' }, t('ev_view')));
    } else if (e.has_frame && !e.review) {
      put(acts, h('button', { class: 'btn primary', type: 'button', 'data-act': 'inspect',
        onclick: (x) => inspect(e, x.currentTarget, err) }, t('ev_inspect')));
    }
  }
  const open = e.status === 'open';
  return h('article', { class: `card bl-${e.severity}`, 'data-event': e.id, 'data-camera': e.camera_id,
    'data-status': e.status, 'data-review': e.review || 'none' },
  h('div', { class: 'ev' }, pic(`${e.evidence_url}?max_side=240`, e.evidence_url, t('ev_alt', name),
    { width: 120, height: 90, 'data-evidence': '' }),
  h('div', { class: 'ev-info' },
    h('div', { class: 'row' }, h('h3', {}, name), sevBadge(e.severity)),
    e.suspected || e.unconfirmed ? h('div', { class: 'kpis' },
      e.suspected ? h('span', { class: 'pill doubt', 'data-mark': 'suspected' }, t('suspected')) : null,
      e.unconfirmed ? h('span', { class: 'pill doubt', 'data-mark': 'unconfirmed' }, t('ev_unconf')) : null) : null,
    e.unit ? h('div', { 'data-unit': '' }, e.unit) : null,
    h('div', { class: 'muted small ev-meta' }, h('span', {}, t('ev_camera', e.camera_id)),
      h('span', { 'data-time': '' }, fmtTime(e.started_at))))),
  said,
  h('div', { class: 'card-foot' }, h('span', { class: `st ${open ? 'st-open' : 'st-done'}`, 'data-ev-status': '' },
    t(open ? 'ev_open' : 'ev_closed')), acts), err);
}

/** A list filtered by chips, paged by 加载更多, the chip kept in the address (``path?param=key``; the first chip is
 * the plain path) so that Back from an inspection returns to it: 监控告警 here, 群众举报 in reports.js.
 * ``chips``: [[key, label]], the first the default, '' for 全部 ('all' in the address); ``card(item, changed)``
 * makes an item's card, whose element carries ``attr``=id; ``key(item)`` is the chip it belongs to now;
 * ``none(key, answer)`` the empty list's line. ``changed(item, msg)``: the item as the server now has it (it
 * leaves a list it no longer belongs to); ``changed(null, msg, id)``: the server refused, the list is fetched
 * again. Returns the parts and ``load``, which the view awaits once. */
export function chipList({ path, url, param, chips: choices, chosen, label, card, attr, key, none }) {
  const first = choices[0][0];
  let sel = chosen === 'all' ? '' : choices.some(([k]) => k === chosen) ? chosen : first;
  let offset = 0;
  let count = 0;
  let seq = 0;
  let last = null;  // the last answer, for the empty list's line
  const listEl = h('div', {});
  const total = h('p', { class: 'muted small', 'data-total': '' });
  const more = h('button', { class: 'btn ghost block', type: 'button', hidden: true, onclick: (x) =>
    busy(x.currentTarget, () => load(false)).catch((ex) => toast(ex.message)) }, t('more'));
  async function changed(item, msg, id) {
    if (!item) {  // stale: the list again, the server's why on the card where it still is in it
      await load(true, Math.min(200, Math.max(20, offset))).catch(() => {});
      const err = listEl.querySelector(`[${attr}="${id}"] .err`);
      if (err) err.textContent = msg; else toast(msg);
      return;
    }
    const el = listEl.querySelector(`[${attr}="${item.id}"]`);
    if (!sel || sel === key(item)) el?.replaceWith(card(item, changed));
    else if (el) {
      el.remove();
      offset -= 1;
      total.textContent = t('n_items', --count);
      if (!count) listEl.replaceChildren(none(sel, last));
    }
    toast(msg);
  }
  async function load(fresh = true, limit = 20) {
    const mine = ++seq;
    const p = new URLSearchParams({ limit: String(limit), offset: String(fresh ? 0 : offset) });
    if (sel) p.set(param, sel);
    const r = await api('GET', `${url}?${p}`);
    if (mine !== seq) return;  // another chip was tapped meanwhile
    last = r;
    if (fresh) { offset = 0; listEl.replaceChildren(); }
    offset += r.items.length;
    count = r.total;
    total.textContent = t('n_items', r.total);
    if (!r.total) listEl.replaceChildren(none(sel, r));
    for (const x of r.items) listEl.append(card(x, changed));
    more.hidden = offset >= r.total;
  }
  const chip = (text, k) => h('button', { class: 'chip', type: 'button', 'aria-pressed': String(k === sel),
    'data-filter': k || 'all', onclick: async (x) => {
      sel = k;
      history.replaceState(null, '', k === first ? path : `${path}?${param}=${k || 'all'}`);
      for (const c of chips.children) c.setAttribute('aria-pressed', String(c === x.currentTarget));
      await load().catch((ex) => toast(ex.message));
    } }, text);
  const chips = h('div', { class: 'chips evchips', role: 'group', 'aria-label': label },
    ...choices.map(([k, text]) => chip(text, k)));
  return { chips, total, listEl, more, load };
}

/** 监控告警: 待处理 (nobody has looked at them yet) first; 已转检查, 已忽略, 全部 a tap away. The card shows 进行中 /
 * 已结束. An event 忽略'd or brought back leaves a list it no longer belongs to. */
export async function viewEvents(chosen) {
  const list = chipList({
    path: '#/events', url: '/app/api/events', param: 'review', chosen, label: t('ev_f_label'),
    chips: [['none', t('ev_f_none')], ['inspection', t('ev_f_insp')], ['dismissed', t('ev_f_dis')], ['', t('all')]],
    card: eventCard, attr: 'data-event', key: (e) => e.review || 'none',
    none: (review, r) => h('p', { class: 'empty' },
      t(!r.cameras ? 'ev_no_cams' : review === 'none' ? 'ev_none_todo' : review ? 'ev_none_f' : 'ev_none')),
  });
  await list.load();
  return h('div', {}, h('h1', {}, t('ev_title')), h('p', { class: 'muted' }, t('ev_hint')), list.chips, list.total,
    list.listEl, list.more);
}
