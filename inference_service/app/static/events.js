/* View: the organisation's camera events (监控告警) and their line on the inspections list. 转为检查 makes an
 * inspection with the event's frame as its photo; its finding waits for the inspector's 确认 like any other. */
import { api, hzName, sevBadge, taxonomy } from './api.js';
import { en, t } from './i18n.js';
import { ask, fmtTime, h, icon, put, toast } from './dom.js';
import { go } from './app.js';
import { busy } from './inspection.js';
import { pic } from './ledger.js';

/** The inspections list's line to the events: filled in once the API says there are cameras and events. */
export function eventsLine() {
  const a = h('a', { class: 'card evline', href: '#/events', hidden: true, 'data-events-line': '' });
  api('GET', '/app/api/events?limit=1').then(async (r) => {
    if (!r.cameras || !r.total) return;
    const open = (await api('GET', '/app/api/events?status=open&limit=1')).total;
    put(a, icon('warn'), h('span', { class: 'grow' }, t(open ? 'ev_line_open' : 'ev_line', r.total, open)),
      h('span', { class: 'chev', 'aria-hidden': 'true' }, '›'));
    a.hidden = false;
  }).catch(() => { /* offline, or no answer: no line */ });
  return a;
}

/** 转为检查: POST, asking for the scene when the camera's does not imply one; then the new inspection. */
async function inspect(e, btn, err, scene) {
  err.textContent = '';
  try {
    const ins = await busy(btn, () => api('POST', `/app/api/events/${e.id}/inspection`, scene ? { scene } : {}));
    go(`#/inspection/${ins.id}`);
  } catch (ex) {
    if (ex.code !== 'scene_required' || scene) { err.textContent = ex.message; return; }
    const scenes = (await taxonomy()).scenes || [];
    const pick = await ask(t('ev_scene'), t('ev_scene_why'),
      scenes.map((sc) => [sc.id, en() ? sc.name_en : sc.name_zh]), t('cancel'), 'pick');
    if (pick) await inspect(e, btn, err, pick);
  }
}

function eventCard(e) {
  const name = hzName(e);
  const err = h('p', { class: 'err', role: 'alert' });
  let act;
  if (e.inspection_id) {
    act = h('a', { class: 'btn', href: `#/inspection/${e.inspection_id}`, 'data-act': 'view-insp' }, t('ev_view'));
  } else if (!e.has_frame) {
    act = h('span', { class: 'muted small', 'data-no-frame': '' }, t('ev_no_frame'));
  } else {
    act = h('button', { class: 'btn primary', type: 'button', 'data-act': 'inspect',
      onclick: (x) => inspect(e, x.currentTarget, err) }, t('ev_inspect'));
  }
  const open = e.status === 'open';
  return h('article', { class: `card bl-${e.severity}`, 'data-event': e.id, 'data-camera': e.camera_id,
    'data-status': e.status },
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
  h('div', { class: 'card-foot' }, h('span', { class: `st ${open ? 'st-open' : 'st-done'}`, 'data-ev-status': '' },
    t(open ? 'ev_open' : 'ev_closed')), act), err);
}

export async function viewEvents() {
  let status = '';
  let offset = 0;
  let seq = 0;
  const listEl = h('div', {});
  const total = h('p', { class: 'muted small' });
  const more = h('button', { class: 'btn ghost block', type: 'button', hidden: true, onclick: (x) =>
    busy(x.currentTarget, () => load(false)).catch((ex) => toast(ex.message)) }, t('more'));
  async function load(fresh = true) {
    const mine = ++seq;
    const p = new URLSearchParams({ limit: '20', offset: String(fresh ? 0 : offset) });
    if (status) p.set('status', status);
    const r = await api('GET', `/app/api/events?${p}`);
    if (mine !== seq) return;  // another chip was tapped meanwhile
    if (fresh) { offset = 0; listEl.replaceChildren(); }
    offset += r.items.length;
    total.textContent = t('n_items', r.total);
    if (!r.total) {
      listEl.replaceChildren(h('p', { class: 'empty' }, t(!r.cameras ? 'ev_no_cams' : status ? 'ev_none_f' : 'ev_none')));
    }
    for (const e of r.items) listEl.append(eventCard(e));
    more.hidden = offset >= r.total;
  }
  const chip = (label, sv) => h('button', { class: 'chip', type: 'button', 'aria-pressed': String(sv === status),
    'data-filter': sv || 'all', onclick: async (x) => {
      status = sv;
      for (const c of chips.children) c.setAttribute('aria-pressed', String(c === x.currentTarget));
      await load().catch((ex) => toast(ex.message));
    } }, label);
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': en() ? 'Status' : '状态' },
    chip(t('all'), ''), chip(t('ev_open'), 'open'), chip(t('ev_closed'), 'closed'));
  await load();
  return h('div', {}, h('h1', {}, t('ev_title')), h('p', { class: 'muted' }, t('ev_hint')), chips, total, listEl,
    more);
}
