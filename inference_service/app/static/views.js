/* Views: log in, the list of inspections, start an inspection. */
import { api, loggedIn, sceneName } from './api.js';
import { en, t } from './i18n.js';
import { fmtTime, h, icon, put, toast, uuid } from './dom.js';
import { go, route } from './app.js';
import { notify, pump, queued, queueInspection } from './queue.js';
import { LS, st } from './state.js';
import { eventsLine } from './events.js';
import { reportsLine } from './reports.js';
import { ledgerLines } from './ledger.js';

export function viewLogin() {
  const back = JSON.parse(sessionStorage.getItem('hazardscan.back') || 'null');
  const err = h('p', { class: 'err', role: 'alert' });
  const form = h('form', { class: 'card login', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const btn = form.querySelector('button');
    btn.disabled = true;
    try {
      const r = await api('POST', '/app/api/login',
        { username: form.username.value.trim(), password: form.password.value }, { noLogin: true });
      loggedIn(r);
      await notify();
      pump();
      sessionStorage.removeItem('hazardscan.back');
      const same = back && back.uid === r.user.id;  // the page where the session ended, for the same user
      if (same && back.lost) toast(t('unsaved'));
      go(same ? back.hash : '#/inspections');
    } catch (ex) {
      err.textContent = ex.message;
    } finally { btn.disabled = false; }
  } },
  h('h1', {}, t('login_title')), h('p', { class: 'muted' }, t('login_sub')),
  back ? h('p', { class: 'warn', role: 'note', 'data-expired': '' }, t(back.lost ? 'expired_lost' : 'expired')) : null,
  h('label', { for: 'u' }, t('username')),
  h('input', { id: 'u', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' }),
  h('label', { for: 'p' }, t('password')),
  h('input', { id: 'p', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
  err, h('button', { class: 'btn primary block', type: 'submit' }, t('login')));
  return form;
}

/** The photos of an inspection still waiting in the phone's queue. */
const queuedPhotos = (target) => queued.filter((r) => r.kind === 'photo' && r.target === target).length;
const statusPill = (it) => (it.status ? h('span', { class: `st ${it.status === 'finished' ? 'st-closed' : 'st-in_progress'}`,
  'data-insp-status': it.status }, t(it.status === 'finished' ? 'finished' : 'in_progress')) : null);

/** 检查记录 chips: [key in the address, label, query]. */
const LIST_CHIPS = [['', 'all', {}], ['mine', 'f_mine', { mine: 'true' }],
  ['in_progress', 'in_progress', { status: 'in_progress' }], ['finished', 'finished', { status: 'finished' }]];
/** 检查记录: newest first; a search (the unit's name or address) and a chip (我的 / 进行中 / 已完成), both kept in the
 * address (#/inspections?q=…&f=…) so that Back from an inspection returns to what was shown. */
export async function viewList(query = '') {
  await notify();  // the queue as it is on the phone now (after a reload the app's start has not read it yet)
  const asked = new URLSearchParams(query);
  const want = { q: asked.get('q') || '', f: LIST_CHIPS.some(([k]) => k === asked.get('f')) ? asked.get('f') : '' };
  const wrap = h('div', {});
  const list = h('ul', { class: 'list' });
  let offset = 0;
  let seq = 0;
  let offline = null;  // without signal: draws the copies kept on the phone (set below)
  const more = h('button', { class: 'btn ghost block', type: 'button', hidden: true, onclick: () => load() },
    t('more'));
  const title = h('h1', {}, t('inspections'));
  const filtered = () => Boolean(want.q || want.f);
  async function reload() {
    const p = new URLSearchParams();
    if (want.q) p.set('q', want.q);
    if (want.f) p.set('f', want.f);
    history.replaceState(null, '', p.toString() ? `#/inspections?${p}` : '#/inspections');
    if (offline) { offline(); return; }  // no signal: the copies on the phone
    offset = 0;
    await load(true).catch((ex) => toast(ex.message));
  }
  const box = h('input', { type: 'search', id: 'insp-q', name: 'q', value: want.q, maxLength: 100,
    placeholder: t('search_units'), 'aria-label': t('search_units'), enterkeyhint: 'search', autocomplete: 'off' });
  let typing = 0;
  box.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { want.q = box.value.trim(); reload(); }, 300);
  });
  const search = h('form', { role: 'search', class: 'insp-search', onsubmit: (e) => {
    e.preventDefault();
    clearTimeout(typing);
    want.q = box.value.trim();
    box.blur();  // the phone's keyboard goes: the results show
    reload();
  } }, box);
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': t('f_label') },
    LIST_CHIPS.map(([key, label]) => h('button', { class: 'chip', type: 'button', 'data-chip': key || 'all',
      'aria-pressed': String(key === want.f), onclick: (e) => {
        want.f = key;
        for (const c of chips.children) c.setAttribute('aria-pressed', String(c === e.currentTarget));
        reload();
      } }, t(label))));
  // started without signal, not on the server yet: first in the list (left out of a search or a chip's list)
  const localItems = () => queued.filter((x) => x.kind === 'insp' && !filtered()).map((q) => {
    const n = queuedPhotos(`local-${q.key}`);
    return h('li', {}, h('a', { class: 'card item', href: `#/inspection/local-${q.key}`, 'data-local': q.key },
      h('div', { class: 'row spread' }, h('h3', { class: 'grow' }, q.body.unit.name),
        h('span', { class: 'pill hz-n' }, t('sync_pending'))),
      h('div', { class: 'muted' }, q.body.unit.address),
      h('div', { class: 'muted small' }, `${fmtTime(new Date(q.created).toISOString())} · ${sceneName(q.body.scene)}`),
      n ? h('div', { class: 'kpis' }, h('span', { class: 'pill', 'data-queued': n }, t('pending_n', n))) : null));
  });
  list.append(...localItems());
  const counts = (it) => {
    const n = queuedPhotos(String(it.id));
    return [h('span', { class: 'pill' }, `${it.photo_count || 0} ${t('photos')}`),
      h('span', { class: `pill${it.hazard_count ? ' hz-n' : ''}` }, `${it.hazard_count || 0} ${t('hazards')}`),
      it.pending_count ? h('span', { class: 'pill doubt', 'data-pending': it.pending_count },
        t('n_awaiting', it.pending_count)) : null,
      n ? h('span', { class: 'pill', 'data-queued': n }, t('pending_n', n)) : null];
  };
  async function load(fresh = false) {
    const mine = ++seq;
    const p = new URLSearchParams({ limit: '20', offset: String(offset),
      ...(want.q && { q: want.q }), ...LIST_CHIPS.find(([k]) => k === want.f)[2] });
    const r = await api('GET', `/app/api/inspections?${p}`);
    if (mine !== seq) return;  // typed on, or another chip tapped, meanwhile
    if (fresh) list.replaceChildren(...localItems());
    offset += r.items.length;
    title.textContent = `${t('inspections')} (${r.total})`;
    if (!r.total && !list.children.length) {
      list.append(h('li', { class: 'empty', 'data-empty': 'list' }, t(filtered() ? 'no_match' : 'none_yet')));
    }
    for (const it of r.items) {
      list.append(h('li', {}, h('a', { class: 'card item', href: `#/inspection/${it.id}`, 'data-insp': it.id },
        h('div', { class: 'row spread' }, h('h3', { class: 'grow' }, it.unit.name), statusPill(it)),
        h('div', { class: 'muted' }, it.unit.address),
        h('div', { class: 'muted small' }, `${fmtTime(it.created_at)} · ${sceneName(it.scene)}`,
          it.inspector?.display_name ? ` · ${t('inspector')}: ${it.inspector.display_name}` : ''),
        h('div', { class: 'kpis' }, counts(it)))));
    }
    more.hidden = offset >= r.total;
  }
  try {
    await load();
  } catch (e) {
    if (e.status !== 0) throw e;
    // offline: what is queued on the phone, and the inspections opened lately (kept by keepRecent), newest first;
    // a search or a chip narrows these on the phone
    const notice = h('li', { class: 'warn', role: 'note', 'data-offline': 'list' }, t('offline_list'));
    const kept = Object.values(JSON.parse(LS.getItem('hazardscan.recent') || '{}')).reverse().map((it) => [it,
      h('li', {}, h('a', { class: 'card item', href: `#/inspection/${it.id}`, 'data-insp': it.id,
        'data-offline-copy': '' },
      h('div', { class: 'row spread' }, h('h3', { class: 'grow' }, it.unit.name),
        h('span', { class: 'pill', 'data-mark': 'offline-copy' }, t('offline_copy')), statusPill(it)),
      h('div', { class: 'muted' }, it.unit.address),
      h('div', { class: 'muted small' }, `${fmtTime(it.created_at)} · ${sceneName(it.scene)}`),
      h('div', { class: 'kpis' }, counts(it))))]);
    const matches = (it) => {
      const q = want.q.toLowerCase();
      return (!q || `${it.unit.name}\n${it.unit.address || ''}`.toLowerCase().includes(q))
        && (want.f !== 'mine' || it.inspector?.id === st.user?.id)
        && (!['in_progress', 'finished'].includes(want.f) || (it.status || 'in_progress') === want.f);
    };
    offline = () => {
      const shown = kept.filter(([it]) => matches(it)).map(([, li]) => li);
      list.replaceChildren(notice, ...localItems(), ...shown,
        ...(filtered() && !shown.length ? [h('li', { class: 'empty', 'data-empty': 'list' }, t('no_match'))] : []));
    };
    offline();
    const again = () => { if (wrap.isConnected) route(); };
    window.addEventListener('online', again, { once: true });
    // back online before this list was drawn (the event came and went), or the server did not answer: try again soon
    if (navigator.onLine) setTimeout(again, 5000);
  }
  list.style.marginTop = '12px';
  return put(wrap, title, h('a', { class: 'btn primary block', href: '#/new' }, icon('plus'), t('new_insp')),
    ledgerLines(), eventsLine(), st.user?.role === 'inspector' ? null : reportsLine(), search, chips, list, more);
}

/* The 新建检查 form's draft (this tab, this user): kept while the inspector looks elsewhere, and with it the
 * client_id, so that sending the same form again returns the same inspection; dropped once it is created. */
const draftKey = () => `hazardscan.draft.${st.user?.id || ''}`;
const DRAFT = ['uname', 'addr', 'credit', 'scene'];
export function viewNew() {
  const draft = JSON.parse(sessionStorage.getItem(draftKey()) || '{}');
  const clientId = draft.clientId || uuid();  // a retried create (double tap, flaky network) returns the same one
  const keep = () => sessionStorage.setItem(draftKey(), JSON.stringify({ clientId,
    ...Object.fromEntries(DRAFT.map((k) => [k, form.elements[k].value])) }));
  // the inspection replaces the form in the history: the phone's back button goes to the list, not to the form
  const opened = (id) => { sessionStorage.removeItem(draftKey()); location.replace(`#/inspection/${id}`); };
  let loc = null;
  const err = h('p', { class: 'err', role: 'alert' });
  const locText = h('span', { class: 'muted small', 'aria-live': 'polite' }, t('loc_none'));
  const scenes = st.tax.scenes || [];
  const form = h('form', { class: 'card', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const f = form.elements;
    const credit = f.credit.value.trim().toUpperCase();
    if (!f.uname.value.trim() || !f.addr.value.trim() || !f.scene.value) {
      err.textContent = en() ? 'Fill in the unit name, address and scene.' : '请填写单位名称、地址并选择检查场景。';
      return;
    }
    if (credit && !/^[0-9A-Z]{18}$/.test(credit)) { err.textContent = t('cred_bad'); f.credit.focus(); return; }
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const body = { unit: { name: f.uname.value.trim(), address: f.addr.value.trim(), credit_code: credit || null },
        scene: f.scene.value, client_id: clientId };
      if (loc) body.location = loc;
      if (!navigator.onLine) { opened(await queueInspection(body)); return; }
      const ins = await api('POST', '/app/api/inspections', body);
      opened(ins.id);
    } catch (ex) {
      if (ex.status === 0) { opened(await queueInspection(body)); return; }  // no signal
      err.textContent = ex.message;
    } finally { btn.disabled = false; }
  }, oninput: keep, onchange: keep },
  h('h1', {}, t('new_insp')),
  h('label', { for: 'uname' }, t('unit_name')),
  h('input', { id: 'uname', name: 'uname', required: true, autocomplete: 'organization', maxLength: 200 }),
  h('label', { for: 'addr' }, t('address')),
  h('input', { id: 'addr', name: 'addr', required: true, autocomplete: 'street-address', maxLength: 300 }),
  h('label', { for: 'credit' }, t('credit'), ' ', h('span', { class: 'hint' }, `(${t('optional')})`)),
  h('input', { id: 'credit', name: 'credit', maxLength: 18, autocapitalize: 'characters', spellcheck: false }),
  h('label', { for: 'scene' }, t('scene')),
  h('select', { id: 'scene', name: 'scene', required: true },
    h('option', { value: '' }, t('choose')),
    scenes.map((sc) => h('option', { value: sc.id }, en() ? sc.name_en : sc.name_zh))),
  h('label', {}, t('location'), ' ', h('span', { class: 'hint' }, `(${t('optional')})`)),
  h('div', { class: 'row' }, h('button', { class: 'btn ghost', type: 'button', onclick: () => {
    if (!navigator.geolocation) { locText.textContent = t('geo_na'); return; }
    locText.textContent = t('loading');
    navigator.geolocation.getCurrentPosition((p) => {
      loc = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: Math.round(p.coords.accuracy) };
      locText.textContent = `${t('loc_ok', loc.accuracy_m)} ${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}`;
    }, (ex) => { locText.textContent = t('loc_fail', ex.message); },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  } }, icon('pin'), t('get_loc')), locText),
  err, h('button', { class: 'btn primary block', type: 'submit' }, t('start')));
  for (const k of DRAFT) if (draft[k]) form.elements[k].value = draft[k];
  return form;
}
