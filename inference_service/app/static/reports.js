/* View: public hazard reports (群众举报, 隐患随手拍): photos sent through a report link by people without an account,
 * and their line on the inspections list; 举报链接 on 我的 (admins). 查证属实 makes an inspection of the place with
 * the report's photo; its hazards wait for 确认 like any other. 不属实 closes it with a reason its sender reads. */
import { api, hzName, sevBadge, taxonomy } from './api.js';
import { en, t } from './i18n.js';
import { ask, chev, fmtTime, h, icon, put, toast } from './dom.js';
import { go } from './app.js';
import { busy } from './inspection.js';
import { pic } from './ledger.js';
import { chipList } from './events.js';

/** The inspections list's line to the reports (views.js asks for it for supervisors and admins only), once the
 * organisation has had one: how many wait to be checked (待核查), or that none does. */
export function reportsLine() {
  const a = h('a', { class: 'card evline', href: '#/reports', hidden: true, 'data-reports-line': '' });
  (async () => {
    const c = (await api('GET', '/app/api/reports?status=new&limit=1', null, { noLogin: true })).counts;
    const n = c.new;
    if (!n && !c.verified && !c.rejected) return;
    put(a, icon('image'), h('span', { class: 'grow' }, t('rp_title'), ' · ',
      h('span', { class: n ? 'evn' : 'muted', 'data-todo': n }, t(n ? 'rp_todo_n' : 'rp_todo_0', n))), chev());
    a.classList.toggle('quiet', !n);
    a.hidden = false;
  })().catch(() => { /* offline, or no answer: no line */ });
  return a;
}

const shortTime = (iso) => new Date(iso).toLocaleString(en() ? 'en-GB' : 'zh-CN', { month: '2-digit',
  day: '2-digit', hour: '2-digit', minute: '2-digit' });
const group = (btn) => [...btn.parentNode.querySelectorAll('button')];

/** 查证属实: a sheet asks for the inspection's scene and the unit's name (the place, unless changed), then POST
 * …/verify and the new inspection. A 409 (found 不属实 meanwhile, by a colleague): the server's why, the card as
 * it now is. */
async function verify(r, btn, err, changed) {
  err.textContent = '';
  const unit = h('input', { id: 'rp-unit', name: 'rp-unit', maxLength: 200, value: r.place, autocomplete: 'off' });
  const scenes = (await taxonomy()).scenes || [];
  const scene = await ask(t('rp_ver_title'), t('rp_ver_why'),
    scenes.map((sc) => [sc.id, en() ? sc.name_en : sc.name_zh]), t('cancel'), 'pick',
    { body: h('label', { class: 'ev-note' }, t('rp_unit'), unit) });
  if (!scene) return;
  try {
    const ins = await busy(btn, () => api('POST', `/app/api/reports/${r.id}/verify`,
      { scene, unit_name: unit.value.trim() || null }), group(btn));
    go(`#/inspection/${ins.id}`);
  } catch (ex) {
    err.textContent = ex.message;
    if (ex.status === 409) changed(null, ex.message, r.id);
  }
}

/** 不属实: a sheet names the report and asks why (required: the sender reads it with their receipt), then POST
 * …/reject. */
async function reject(r, btn, err, changed) {
  err.textContent = '';
  const note = h('textarea', { id: 'rp-note', name: 'rp-note', maxLength: 2000, rows: 3 });
  const yes = await ask(t('rp_rej_title'), [h('b', { 'data-ask-report': '' }, r.place), h('br'), t('rp_rej_why')],
    [['reject', t('rp_reject'), 'bad']], t('cancel'), '', { body: h('label', { class: 'ev-note' }, t('rp_reason'), note),
      check: () => (note.value.trim() ? '' : (note.focus(), t('rp_reason_need'))) });
  if (!yes) return;
  try {
    changed(await busy(btn, () => api('POST', `/app/api/reports/${r.id}/reject`, { note: note.value.trim() }),
      group(btn)), t('rp_rej_done'));
  } catch (ex) {
    err.textContent = ex.message;
    if (ex.status === 409) changed(null, ex.message, r.id);
  }
}

/** ``changed(report, msg)``: the report as the server now has it, after 不属实 on this card; ``changed(null, msg,
 * id)``: the server refused, the card is stale (the list is fetched again). */
function reportCard(r, changed) {
  const err = h('p', { class: 'err', role: 'alert' });
  const acts = h('span', { class: 'acts' });
  const by = r.decided_at ? t('ev_by', r.decided_by || '', shortTime(r.decided_at)) : '';
  let said = null;  // what became of it: 已查证属实 / 不属实, by whom and when
  if (r.status === 'verified') {
    said = h('p', { class: 'ev-review', 'data-review-line': '' }, h('b', {}, t('rp_verified')), by);
    if (r.inspection_id) {
      put(acts, h('a', { class: 'btn', href: `#/inspection/${r.inspection_id}`, 'data-act': 'view-insp' }, t('ev_view')));
    }
  } else if (r.status === 'rejected') {
    said = h('p', { class: 'ev-review', 'data-review-line': '' }, h('b', {}, t('rp_rejected')), by,
      r.note ? h('span', { 'data-review-note': '' }, t('ev_quote', r.note)) : null);
  } else {
    put(acts, h('button', { class: 'btn ghost', type: 'button', 'data-act': 'reject',
      onclick: (x) => reject(r, x.currentTarget, err, changed) }, t('rp_reject')),
    h('button', { class: 'btn primary', type: 'button', 'data-act': 'verify',
      onclick: (x) => verify(r, x.currentTarget, err, changed) }, t('rp_verify')));
  }
  return h('article', { class: 'card', 'data-report': r.id, 'data-status': r.status },
    h('div', { class: 'ev' }, pic(`${r.photo_url}?max_side=240`, r.photo_url, t('rp_alt', r.place),
      { width: 120, height: 90, 'data-photo': '' }),
    h('div', { class: 'ev-info' },
      h('h3', { 'data-place': '' }, r.place),
      r.description ? h('div', { 'data-desc': '' }, r.description) : null,
      r.contact ? h('a', { class: 'tel', href: `tel:${r.contact}`, 'data-contact': '' }, r.contact) : null,
      h('div', { class: 'muted small ev-meta' }, h('span', { 'data-link': '' }, r.link_name),
        h('span', { 'data-time': '' }, fmtTime(r.created_at))))),
    h('div', { class: 'kpis', 'data-guess': '' }, h('span', { class: 'muted small' }, t('rp_ai')),
      r.hazards.length ? r.hazards.map((x) => h('span', { class: 'pill', 'data-hazard': x.hazard_id }, hzName(x),
        sevBadge(x.severity))) : h('span', { class: 'pill' }, t('rp_ai_none'))),
    r.warnings.length ? h('p', { class: 'muted small rp-warn', 'data-warnings': '' }, icon('warn'), r.warnings.join('；'))
      : null,
    said, acts.children.length ? h('div', { class: 'card-foot' }, acts) : null, err);
}

/** 群众举报: 待核查 first; 查证属实, 不属实, 全部 a tap away (#/reports?status=rejected). A report found 不属实 leaves
 * 待核查. */
export async function viewReports(chosen) {
  const list = chipList({
    path: '#/reports', url: '/app/api/reports', param: 'status', chosen, label: t('rp_f_label'),
    chips: [['new', t('rp_f_new')], ['verified', t('rp_f_ver')], ['rejected', t('rp_rejected')], ['', t('all')]],
    card: reportCard, attr: 'data-report', key: (r) => r.status,
    none: (status) => h('p', { class: 'empty' },
      t(status === 'new' ? 'rp_none_new' : status ? 'ev_none_f' : 'rp_none')),
  });
  const title = h('h1', {}, t('rp_title'));
  try {
    await list.load();
  } catch (ex) {  // an inspector (by the address): said plainly, not as an error to retry
    if (ex.status !== 403) throw ex;
    return h('div', {}, title, h('p', { class: 'card', 'data-no-perm': '' }, t('rp_no_perm')));
  }
  const reward = h('a', { class: 'btn ghost', href: '/app/api/reports/export.xlsx?status=verified',
    download: 'reports-verified.xlsx', 'data-act': 'export' }, t('rp_export'));  // 查证属实的, for the reward
  return h('div', {}, title, h('p', { class: 'muted' }, t('rp_hint')), list.chips, list.total, list.listEl, list.more,
    h('div', { class: 'btns' }, reward));
}

/** 举报链接 (admins): the links to publish (printed as a QR code on a site notice), each with its address to copy
 * and how many reports came through it; 停用, after a confirmation, ends one at once (its reports stay). */
export function reportLinksCard() {
  const list = h('ul', { class: 'users', 'aria-label': t('rl_title') });
  const err = h('p', { class: 'err', role: 'alert' });
  async function load() {
    try {
      const ls = (await api('GET', '/app/api/report-links')).items;
      list.replaceChildren(...(ls.length ? ls.map(row) : [h('li', { class: 'muted' }, t('rl_none'))]));
    } catch (ex) { err.textContent = ex.message; }
  }
  function row(l) {
    const url = location.origin + l.path;
    const code = h('code', { class: 'url', 'data-url': '' }, url);
    const li = h('li', { 'data-link': l.id, 'data-revoked': String(!!l.revoked_at) },
      h('div', { class: 'row' }, h('strong', { class: 'grow' }, l.name),
        l.revoked_at ? h('span', { class: 'tag-bad' }, t('rl_revoked')) : null),
      h('div', { class: 'muted small', 'data-counts': '' }, t('rl_counts', l.reports, l.new_reports)));
    if (l.revoked_at) return put(li, h('div', { class: 'muted small' }, t('rl_revoked_at', fmtTime(l.revoked_at))));
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(url);
        toast(t('rl_copied'));
      } catch {  // no clipboard (http, an old browser): the address selected, for the phone's own 复制
        getSelection().selectAllChildren(code);
        toast(t('rl_copy_sel'));
      }
    };
    const revoke = async (x) => {
      const btn = x.currentTarget;
      if (!await ask(t('rl_revoke_q', l.name), t('rl_revoke_why'), [['revoke', t('rl_revoke'), 'bad']])) return;
      try {
        const n = await busy(btn, () => api('POST', `/app/api/report-links/${l.id}/revoke`), group(btn));
        li.replaceWith(row(n));
        toast(t('rl_revoke_done', l.name));
      } catch (ex) { err.textContent = ex.message; }
    };
    return put(li, code, h('div', { class: 'row u-acts' },
      h('button', { class: 'btn ghost', type: 'button', 'data-act': 'copy', onclick: copy }, t('rl_copy')),
      h('a', { class: 'btn ghost', href: `/app/api/report-links/${l.id}/poster.pdf`, target: '_blank', rel: 'noopener',
        'data-act': 'poster' }, t('rl_poster')),
      h('button', { class: 'btn bad', type: 'button', 'data-act': 'revoke', onclick: revoke }, t('rl_revoke'))));
  }
  const name = h('input', { id: 'rl-name', name: 'rl-name', maxLength: 100, autocomplete: 'off',
    placeholder: t('rl_name_ph') });
  const make = h('button', { class: 'btn primary block', type: 'submit' }, t('rl_new'));
  const form = h('form', { noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    if (!name.value.trim()) { err.textContent = t('rl_name_need'); name.focus(); return; }
    try {
      const l = await busy(make, () => api('POST', '/app/api/report-links', { name: name.value.trim() }));
      list.querySelector('li.muted')?.remove();
      list.prepend(row(l));
      form.reset();
      toast(t('rl_made'));
    } catch (ex) { err.textContent = ex.message; }
  } }, h('label', { for: 'rl-name' }, t('rl_name')), name, err, make);
  load();
  return h('section', { class: 'card', id: 'report-links' }, h('h2', {}, t('rl_title')),
    h('p', { class: 'muted' }, t('rl_hint')), list, form);
}
