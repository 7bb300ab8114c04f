/* View: the hazard ledger (隐患台账): filters, status chips, lifecycle buttons, rectification photos, 指派. */
import { api, hzName, sevBadge, sevName } from './api.js';
import { en, sysNote, t } from './i18n.js';
import { enqueue, queueCard, uploadHooks } from './queue.js';
import { chev, fmtDate, fmtTime, h, icon, put, s, toast } from './dom.js';
import { busy } from './inspection.js';
import { st } from './state.js';

export const STATUSES = ['open', 'in_progress', 'pending_review', 'closed'];
/** Supervisors and admins review rectifications (复查销号), assign and see 待复查 on the list. */
const reviews = () => st.user?.role === 'supervisor' || st.user?.role === 'admin';
let shownStatus = '';  // the status chip of the list on screen: a card moved to another status leaves it
/** The status chips: [key in the address (#/ledger?status=…), label, filter]; 已逾期: past the deadline, not closed;
 * 3 天内到期: not closed, the deadline in the next three days (to chase before it passes). */
const CHIPS = [['', 'all', {}], ...STATUSES.map((sv) => [sv, `s_${sv}`, { status: sv }]),
  ['overdue', 'overdue', { overdue: true, closed: false }], ['due_soon', 'due_soon', { due_within: 3 }]];
export async function viewLedger(chosen = '') {
  const first = CHIPS.find(([key]) => key === chosen) || CHIPS[0];
  const f = { status: '', overdue: false, closed: null, due_within: 0, unit: '', hazard: '', severity: '', inspector: '', from: '',
    to: '', ...first[2] };
  const inspectors = h('select', { id: 'f-inspector', name: 'inspector' }, h('option', { value: '' }, t('all')));
  api('GET', '/app/api/stats', null, { noLogin: true }).then((d) => {  // the inspectors who found something, as the filter's choices
    for (const x of d.by_inspector || []) inspectors.append(h('option', { value: x.inspector_id }, x.display_name));
  }).catch(() => { /* the filter stays at 全部 */ });
  const listEl = h('div', {});
  const total = h('p', { class: 'muted small' });
  const more = h('button', { class: 'btn ghost block', type: 'button', hidden: true, onclick: () => load(false) },
    t('more'));
  const exp = h('div', { class: 'row' });
  const summary = h('summary', {}, t('filter'));
  const FIELDS = ['unit', 'hazard', 'severity', 'inspector', 'from', 'to'];
  let offset = 0;
  const qs = () => {
    const p = new URLSearchParams();
    for (const k of ['unit', 'hazard', 'severity', 'inspector', 'status', 'from', 'to']) if (f[k]) p.set(k, f[k]);
    if (f.overdue) p.set('overdue', 'true');
    if (f.closed != null) p.set('closed', String(f.closed));
    if (f.due_within) p.set('due_within', String(f.due_within));
    return p;
  };
  async function load(fresh = true) {
    if (fresh) { offset = 0; listEl.replaceChildren(); }
    const p = qs();
    p.set('limit', '20'); p.set('offset', String(offset));
    const r = await api('GET', `/app/api/ledger?${p}`);
    shownStatus = f.status;
    offset += r.items.length;
    total.textContent = t('n_items', r.total);
    if (!r.total) listEl.replaceChildren(h('p', { class: 'empty' }, t(qs().toString() ? 'no_items' : 'ledger_empty')));
    for (const it of r.items) listEl.append(ledgerCard(it));
    more.hidden = offset >= r.total;
    const n = FIELDS.filter((k) => f[k]).length;  // say that a filter is active, also when the form is folded
    summary.textContent = n ? t('filter_n', n) : t('filter');
    const q = qs().toString();
    exp.replaceChildren(h('span', { class: 'muted small' }, `${t('export')}:`),
      h('a', { class: 'btn ghost', href: `/app/api/ledger/export.csv${q ? `?${q}` : ''}`, download: 'ledger.csv' }, 'CSV'),
      h('a', { class: 'btn ghost', href: `/app/api/ledger/export.xlsx${q ? `?${q}` : ''}`, download: 'ledger.xlsx' },
        'Excel'));
  }
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': en() ? 'Status' : '状态' },
    CHIPS.map(([key, label, set]) => h('button', { class: 'chip', type: 'button', 'aria-pressed': String(key === first[0]),
      'data-chip': key || 'all', onclick: async (e) => {
        Object.assign(f, { status: '', overdue: false, closed: null, due_within: 0 }, set);
        // kept in the address, so that Back (from an inspection opened here) returns to this chip
        history.replaceState(null, '', key ? `#/ledger?status=${key}` : '#/ledger');
        for (const c of chips.children) c.setAttribute('aria-pressed', 'false');
        e.currentTarget.setAttribute('aria-pressed', 'true');
        await load().catch((ex) => toast(ex.message));
      } }, t(label))));
  const fld = (id, label, input) => h('div', { class: id === 'unit' || id === 'hazard' ? 'full' : '' },
    h('label', { for: `f-${id}` }, label), input);
  const filters = h('details', { class: 'card' }, summary,
    h('form', { class: 'filters', onsubmit: async (e) => {
      e.preventDefault();
      const el = e.target.elements;
      for (const k of FIELDS) f[k] = el[k].value.trim();
      await load().catch((ex) => toast(ex.message));
    }, onreset: async () => {  // 重置 clears what is applied too (the status chips stay as they are)
      for (const k of FIELDS) f[k] = '';
      await load().catch((ex) => toast(ex.message));
    } },
    fld('unit', t('unit'), h('input', { id: 'f-unit', name: 'unit', type: 'search' })),
    fld('hazard', t('hazard'), h('select', { id: 'f-hazard', name: 'hazard' }, h('option', { value: '' }, t('all')),
      st.tax.hazards.map((x) => h('option', { value: x.id }, hzName(x))))),
    fld('severity', t('severity'), h('select', { id: 'f-severity', name: 'severity' },
      h('option', { value: '' }, t('all')), (st.tax.severities || []).map((x) => h('option', { value: x.id },
        sevName(x.id))))),
    fld('inspector', t('inspector'), inspectors),
    fld('from', t('from'), h('input', { id: 'f-from', name: 'from', type: 'date' })),
    fld('to', t('to'), h('input', { id: 'f-to', name: 'to', type: 'date' })),
    h('div', { class: 'full btns' }, h('button', { class: 'btn primary', type: 'submit' }, t('apply')),
      h('button', { class: 'btn ghost', type: 'reset' }, t('reset')))));
  await load();
  return h('div', {}, h('h1', {}, t('ledger')), chips, filters, total, listEl, more, exp);
}

/** 整改跟踪 on the inspections list: 逾期未改 N (everyone) and 待复查 N (supervisors and admins, who review), each a
 * line to the ledger with that chip chosen; nothing when none, or without signal. */
export function ledgerLines() {
  const box = h('div', { 'data-ledger-lines': '' });
  api('GET', '/app/api/ledger/summary', null, { noLogin: true }).then((c) => {
    const line = (key, n) => h('a', { class: 'card evline', href: `#/ledger?status=${key}`, 'data-todo': key },
      icon(key === 'overdue' ? 'warn' : 'ledger'), h('span', { class: 'grow' }, t('ledger'), ' · ',
        h('span', { class: 'evn' }, t(`todo_${key}`, n))), chev());
    box.replaceChildren(...[c.overdue ? line('overdue', c.overdue) : null,
      reviews() && c.pending_review ? line('pending_review', c.pending_review) : null].filter(Boolean));
  }).catch(() => { /* offline, or no answer: no line */ });
  return box;
}

export let peoplePromise = null;  // the organisation's users for 指派 (listed to supervisors and admins)
export const people = () => (peoplePromise ||= api('GET', '/app/api/users', null, { noLogin: true })
  .then((r) => r.items).catch(() => []));
/** 指派 / 调整期限 (supervisor): responsible person, assignee, deadline, note; 保存 waits for the answer, then
 * says what changed; ``fail`` shows a refusal. */
export function assignForm(it, done, fail) {
  const id = (k) => `${k}-${it.id}`;
  const who = h('select', { id: id('as'), name: 'assigned_to' }, h('option', { value: '' }, '—'));
  people().then((us) => {
    for (const u of us) who.append(h('option', { value: u.id, selected: u.id === it.assigned_to }, u.display_name || u.username));
    who.parentElement.hidden = !us.length;
  });
  const btn = h('button', { class: 'btn', type: 'submit', 'data-act': 'assign' }, t('save'));
  const form = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    const el = form.elements;
    const body = { version: it.version, note: el.note.value.trim() };
    if (el.responsible.value.trim()) body.responsible_person = el.responsible.value.trim();
    if (el.deadline.value) body.deadline = el.deadline.value;
    if (who.value) body.assigned_to = who.value;
    try {
      const n = await busy(e.submitter || btn, () => api('POST', `/app/api/ledger/${it.id}/assign`, body));
      const said = [];
      if (n.assigned_to && n.assigned_to !== it.assigned_to) said.push(t('assigned_to', who.selectedOptions[0].text));
      if (n.deadline !== it.deadline) said.push(`${t('deadline')} ${fmtDate(n.deadline)}`);
      if (n.responsible_person !== it.responsible_person) said.push(`${t('responsible')}: ${n.responsible_person}`);
      toast(said.length ? t('saved_what', said.join(en() ? '; ' : '，')) : t('saved'));
      done(n);
    } catch (ex) { fail(ex); }
  } },
  h('label', { for: id('ar') }, t('responsible')),
  h('input', { id: id('ar'), name: 'responsible', value: it.responsible_person || '', maxLength: 100 }),
  h('div', { hidden: true }, h('label', { for: id('as') }, t('assignee')), who),
  h('label', { for: id('ad') }, t('deadline')),
  h('input', { id: id('ad'), name: 'deadline', type: 'date', value: (it.deadline || '').slice(0, 10) }),
  h('label', { for: id('an') }, t('note'), ' ', h('span', { class: 'hint' }, `(${t('optional')})`)),
  h('input', { id: id('an'), name: 'note', maxLength: 2000 }),
  h('div', { class: 'btns' }, btn));
  return h('details', { class: 'small assign' }, h('summary', {}, t('assign')), form);
}
/** Local calendar days from today to the day of ``iso``: 0 today, 1 tomorrow, -1 yesterday. */
export function calendarDays(iso, now = new Date()) {
  const day = (d) => Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86400000;
  return day(new Date(iso)) - day(now);
}
/** A picture that opens large when tapped (a full-screen dialog; tap or Esc closes it). */
export function pic(src, large, alt, attrs = {}) {
  return h('button', { class: 'pic', type: 'button', 'aria-label': `${alt}（${t('enlarge')}）`, onclick: () => {
    const dlg = h('dialog', { class: 'lightbox', 'aria-label': alt, onclick: () => dlg.close(),
      onclose: () => dlg.remove() },
    h('img', { src: large, alt }), h('button', { class: 'btn', type: 'button', autofocus: true }, t('close')));
    document.body.append(dlg);
    dlg.showModal();
  } }, h('img', { src, alt, loading: 'lazy', decoding: 'async', ...attrs }));
}
/** Which hazard this is: the photo that found it (its box alone), the inspector's note, when and by whom it was
 * entered; with a rectification photo, before and after side by side. */
export function evidence(it, back) {
  const ev = (side) => `${it.evidence_url}?max_side=${side}${en() ? '&lang=en' : ''}`;  // labels drawn in the UI's language
  const alt = t('evidence_alt', hzName(it));
  const by = it.history?.[0]?.by;
  const info = h('div', { class: 'ev-info small' },
    it.note ? h('div', { 'data-note': '' }, t('note_is', it.note)) : null,
    it.created_at ? h('div', { class: 'muted', 'data-found': '' },
      h('span', { class: 'nowrap' }, t('found_on', fmtDate(it.created_at))),
      by ? [' · ', h('span', { class: 'nowrap' }, t('entered_by', by))] : null) : null);
  if (!it.rectification_photo_url) {
    return h('div', { class: 'ev' }, pic(ev(240), ev(1280), alt, { width: 120, height: 90, 'data-evidence': '' }),
      info);
  }
  const after = t(back ? 'fix_photo_back' : 'fix_photo');
  return h('div', {},
    h('div', { class: 'compare', 'data-compare': '' },
      h('figure', {}, pic(ev(320), ev(1280), alt, { width: 160, height: 120, 'data-evidence': '' }),
        h('figcaption', {}, t('before'))),
      h('figure', {}, pic(`${it.rectification_evidence_url}?max_side=320`,
        `${it.rectification_evidence_url}?max_side=1280`, after,
        { width: 160, height: 120, 'data-after': '' }), h('figcaption', {}, back ? after : t('after')))),
    info);
}
export function ledgerCard(it) {
  const card = h('article', { class: `card bl-${it.severity}${it.overdue ? ' overdue' : ''}`, 'data-ledger': it.id,
    'data-status': it.status, 'data-finding': it.finding_id, 'data-recheck': it.ai_recheck || null });
  const boss = reviews();
  const err = h('p', { class: 'err', role: 'alert' });
  async function fail(ex) {
    err.textContent = ex.message;
    if (ex.status === 409) {  // someone else moved it: show the item as it is now
      try {
        const c = ledgerCard(await api('GET', `/app/api/ledger/${it.id}`));
        c.querySelector('.err').textContent = ex.message;
        card.replaceWith(c);
      } catch { /* keep the message */ }
    }
  }
  async function move(to, extra = {}) {
    err.textContent = '';
    try {
      const n = await api('POST', `/app/api/ledger/${it.id}/transition`, { to, version: it.version, ...extra });
      if (shownStatus && n.status !== shownStatus) {
        card.remove(); toast(t('left_list', t(`s_${n.status}`)));
      } else card.replaceWith(ledgerCard(n));
    } catch (ex) { await fail(ex); }
  }
  const days = calendarDays(it.deadline);
  // 退回整改: the last change of status went 待复查 -> 整改中; the re-check of the refused photo no longer counts
  const moves = (it.history || []).filter((x) => x.from !== x.to);
  const back = it.status === 'in_progress' && moves.at(-1)?.from === 'pending_review' ? moves.at(-1) : null;
  // 已销号 (主管核实：the override note, without the server's [不采纳 AI 复查结果 …] tag), no more AI 复查未通过
  const closed = it.status === 'closed' ? moves.at(-1) : null;
  const closeNote = closed?.note?.replace(/^\[[^\]]*\]\s*/, '');
  const recheck = back || closed ? null : it.ai_recheck;
  const dueText = it.status === 'closed' ? `${t('closed_at')} ${fmtDate(it.closed_at)}`
    : it.overdue ? t('days_over', Math.max(1, -days)) : days <= 0 ? t('due_today') : t('days_left', days);
  const upload = (label, cls) => h('label', { class: `btn ${cls} filepick` }, icon('camera'), t(label),
    h('input', { type: 'file', accept: 'image/*', capture: 'environment', 'data-pick': 'rectification',
      'aria-label': t(label), onchange: async (e) => {
        const files = [...e.target.files].slice(0, 1);
        e.target.value = '';
        if (files.length) await enqueue(files, 'rect', it.id);
      } }));
  let actions = null;
  if (it.status === 'open') {
    const who = h('input', { id: `rp-${it.id}`, name: 'responsible', value: it.responsible_person || '',
      maxLength: 100, autocomplete: 'name' });
    actions = h('div', {}, h('label', { for: `rp-${it.id}` }, t('responsible')), who,
      h('div', { class: 'btns' }, h('button', { class: 'btn primary', type: 'button', 'data-act': 'start',
        onclick: () => move('in_progress', who.value.trim() ? { responsible_person: who.value.trim() } : {}) },
      t('begin_fix'))));
  } else if (it.status === 'in_progress') {
    actions = h('div', { class: 'btns' }, upload('upload_fix', 'primary'));
  } else if (it.status === 'pending_review' && boss) {
    const failed = it.ai_recheck === 'failed';
    const ov = h('input', { type: 'checkbox', id: `ov-${it.id}` });
    const note = h('textarea', { id: `cn-${it.id}`, maxLength: 1000 });
    actions = h('div', {},
      failed ? h('label', { class: 'check', for: `ov-${it.id}` }, ov, t('override')) : null,
      h('label', { for: `cn-${it.id}` }, failed ? t('override_note') : t('note'), ' ',
        failed ? null : h('span', { class: 'hint' }, `(${t('optional')})`)), note,
      h('div', { class: 'btns' },
        h('button', { class: 'btn ok on', type: 'button', 'data-act': 'close', onclick: () => {
          const n = note.value.trim();
          if (failed && (!ov.checked || !n)) { err.textContent = t('need_note'); ov.focus(); return; }
          move('closed', { note: n || undefined, override: failed ? true : undefined });
        } }, t('close_item')),
        h('button', { class: 'btn bad', type: 'button', 'data-act': 'reopen',
          onclick: () => move('in_progress', { note: note.value.trim() || undefined }) }, t('reopen'))));
  } else if (it.status === 'pending_review') {  // a better photo may replace the one sent (AI 复查未通过 above all)
    actions = h('div', {}, h('p', { class: 'muted' }, t('wait_review')),
      h('div', { class: 'btns' }, upload('reupload_fix', it.ai_recheck === 'failed' ? 'primary' : 'ghost')));
  }
  const q = queueCard('rect', it.id);
  const assign = boss && it.status !== 'closed' ? assignForm(it, (n) => card.replaceWith(ledgerCard(n)), (ex) => {
    err.textContent = ''; fail(ex);
  }) : null;
  // 指派给: the assignee's name (supervisors have the users; an inspector knows only their own)
  const asg = it.assigned_to ? h('span', { class: 'pill', 'data-assignee': '', hidden: true }) : null;
  if (asg) {
    (it.assigned_to === st.user.id ? Promise.resolve([st.user]) : boss ? people() : Promise.resolve([])).then((us) => {
      const u = us.find((x) => x.id === it.assigned_to);
      if (u) { asg.textContent = t('assigned_to', u.display_name || u.username); asg.hidden = false; }
    });
  }
  const hook = (rec, item) => {
    if (!card.isConnected) { uploadHooks.rect.delete(hook); return; }
    if (rec.target === String(it.id) && item?.id) card.replaceWith(ledgerCard(item));
  };
  uploadHooks.rect.add(hook);
  put(card,
    h('div', { class: 'row' }, sevBadge(it.severity), h('h3', { class: 'grow' }, hzName(it)),
      h('span', { class: `st st-${it.status}` }, t(`s_${it.status}`))),
    h('div', { class: 'muted' }, it.unit?.name, it.unit?.address ? ` · ${it.unit.address}` : ''),
    h('div', { class: 'kpis' },
      h('span', { class: it.overdue ? 'tag-bad' : 'pill' }, it.overdue && it.status === 'closed' ? `${t('overdue')} · ${dueText}` : dueText),
      h('span', { class: 'pill' }, `${t('deadline')} ${fmtDate(it.deadline)}`),
      it.responsible_person ? h('span', { class: 'pill' }, `${t('responsible')}: ${it.responsible_person}`) : null, asg,
      recheck === 'passed' ? h('span', { class: 'tag-ok' }, t('ai_passed')) : null,
      it.status === 'pending_review' && !it.ai_recheck ? h('span', { class: 'pill' }, t('ai_none')) : null),
    recheck === 'failed' ? h('div', { class: 'recheck-failed', role: 'note' },
      icon('warn'), h('span', {}, t('ai_failed_long'))) : null,
    closeNote ? h('p', { class: 'tag-ok', 'data-closed-note': '' },
      t(it.ai_recheck === 'failed' ? 'closed_ov' : 'closed_note', closeNote)) : null,
    back ? h('div', { class: 'warn', role: 'note', 'data-sent-back': 'true' }, icon('warn'), h('div', {},
      h('strong', {}, t('sent_back')), back.note ? h('div', {}, `${t('sent_back_why')}：${back.note}`) : null,
      h('div', { class: 'small' }, `${back.by || ''} · ${fmtTime(back.at)}`))) : null,
    evidence(it, back),
    q, actions, assign, err,
    h('div', { class: 'card-foot small' },
      h('a', { href: `#/inspection/${it.inspection_id}` }, t('view_insp')),
      (it.history || []).length ? h('details', { class: 'small' }, h('summary', {}, t('history')),
        h('ol', { class: 'hist' }, it.history.map((x) => h('li', {},
          `${fmtTime(x.at)} ${x.by || ''} ${x.from ? t(`s_${x.from}`) : ''} → ${t(`s_${x.to}`)}${x.note ? `${en() ? ': ' : '：'}${sysNote(x.note)}` : ''}`))))
        : null));
  return card;
}
