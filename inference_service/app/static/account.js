/* The account on 我的: 修改密码 for everyone; 用户管理 for admins (list, add, disable / enable, reset a password). */
import { api } from './api.js';
import { t } from './i18n.js';
import { h, put, toast } from './dom.js';
import { st } from './state.js';

const MIN_PW = 8;
/** A form's error line and success line; ``say(el, text)`` fills one and empties the other. */
function lines() {
  const err = h('p', { class: 'err', role: 'alert' });
  const ok = h('p', { class: 'ok-msg', role: 'status' });
  return { err, ok, fail: (m) => { ok.textContent = ''; err.textContent = m; },
    done: (m) => { err.textContent = ''; ok.textContent = m; } };
}
/** Mark ``input`` as the one to fix (or none) and put the cursor there. */
function blame(form, input) {
  for (const el of form.querySelectorAll('input')) el.removeAttribute('aria-invalid');
  if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
}
const field = (id, label, attrs) => [h('label', { for: id }, label),
  h('input', { id, name: id, type: 'password', maxLength: 1024, ...attrs })];
/** Run ``fn`` with ``btn`` disabled (no second tap while the server hashes the password). */
async function busy(btn, fn) {
  btn.disabled = true; btn.setAttribute('aria-busy', 'true');
  try { await fn(); } finally { btn.disabled = false; btn.removeAttribute('aria-busy'); }
}

/** 修改密码: current, new, again; the user's other phones are logged out (this one stays). */
export function passwordCard() {
  const m = lines();
  const form = h('form', { noValidate: true, onsubmit: (e) => {
    e.preventDefault();
    const el = form.elements;
    const [cur, nw, rep] = [el['pw-cur'], el['pw-new'], el['pw-rep']];
    if (!cur.value) { blame(form, cur); m.fail(t('pw_need_cur')); return; }
    if (nw.value.length < MIN_PW) { blame(form, nw); m.fail(t('pw_short')); return; }
    if (rep.value !== nw.value) { blame(form, rep); m.fail(t('pw_mismatch')); return; }
    if (nw.value === cur.value) { blame(form, nw); m.fail(t('pw_same')); return; }
    busy(btn, async () => {
      try {
        await api('POST', '/app/api/me/password', { current_password: cur.value, new_password: nw.value });
        blame(form, null);
        form.reset();
        m.done(t('pw_done'));
      } catch (ex) {
        if (ex.status === 403 && ex.code === 'wrong_password') { blame(form, cur); m.fail(t('pw_wrong')); }
        else if (ex.status === 429) {
          blame(form, null);
          m.fail(ex.retryAfter ? t('pw_throttled', Math.max(1, Math.ceil(ex.retryAfter / 60))) : ex.message);
        } else if (ex.status === 422) { blame(form, nw); m.fail(t('pw_short')); }
        else m.fail(ex.message);
      }
    });
  } },
  field('pw-cur', t('cur_pw'), { autocomplete: 'current-password', required: true }),
  field('pw-new', t('new_pw'), { autocomplete: 'new-password', required: true, 'aria-describedby': 'pw-hint' }),
  field('pw-rep', t('rep_pw'), { autocomplete: 'new-password', required: true }),
  h('p', { id: 'pw-hint', class: 'muted small' }, t('pw_hint')), m.err, m.ok);
  const btn = h('button', { class: 'btn primary block', type: 'submit' }, t('chg_pw'));
  form.append(btn);
  return h('details', { class: 'card', id: 'password' }, h('summary', {}, t('chg_pw')), form);
}

/** 用户管理 (admins): the organisation's users, disabled ones marked; 停用 / 启用 after a confirmation, 重置密码,
 * 添加用户. */
export function usersCard() {
  const list = h('ul', { class: 'users', 'aria-label': t('users') });
  const m = lines();
  async function load() {
    try {
      const us = (await api('GET', '/app/api/users?inactive=true')).items;
      us.sort((a, b) => Number(b.active) - Number(a.active));  // the disabled ones last
      list.replaceChildren(...us.map(row));
    } catch (ex) { m.fail(ex.message); }
  }
  function row(u) {
    const name = u.display_name || u.username;
    const me = u.id === st.user.id;
    const note = lines();
    const li = h('li', { 'data-user': u.username, 'data-active': String(u.active), class: u.active ? null : 'off' });
    const patch = async (body, said) => {
      try {
        const n = await api('PATCH', `/app/api/users/${u.id}`, body);
        const r = row(n);
        li.replaceWith(r);
        r.querySelector('.ok-msg').textContent = said;
        return true;
      } catch (ex) { note.fail(ex.message); return false; }
    };
    const toggle = me ? null : h('button', { class: `btn ${u.active ? 'bad' : 'ghost'}`, type: 'button',
      'data-act': u.active ? 'disable' : 'enable', onclick: (e) => {
        if (!window.confirm(t(u.active ? 'disable_q' : 'enable_q', name))) return;
        busy(e.currentTarget, () => patch({ active: !u.active }, t(u.active ? 'disabled_done' : 'enabled_done', name)));
      } }, t(u.active ? 'disable' : 'enable'));
    const pid = `rp-${u.id}`;
    const reset = me ? null : h('details', { class: 'reset' }, h('summary', {}, t('reset_pw')),
      h('form', { noValidate: true, onsubmit: (e) => {
        e.preventDefault();
        const input = e.target.elements[pid];
        if (input.value.length < MIN_PW) { blame(e.target, input); note.fail(t('pw_short')); return; }
        busy(e.submitter || e.target.querySelector('button'),
          () => patch({ password: input.value }, t('reset_done', name)));
      } },
      h('label', { for: pid }, t('new_pw')),
      h('input', { id: pid, name: pid, type: 'password', autocomplete: 'new-password', maxLength: 1024 }),
      h('p', { class: 'muted small' }, t('reset_hint')),
      h('button', { class: 'btn primary', type: 'submit' }, t('save'))));
    return put(li,
      h('div', { class: 'row' }, h('strong', { class: 'grow' }, name, me ? t('u_you') : ''),
        h('span', { class: 'pill' }, t(`r_${u.role}`)),
        u.active ? null : h('span', { class: 'tag-bad' }, t('u_disabled'))),
      h('div', { class: 'muted small' }, u.username),
      toggle || reset ? h('div', { class: 'row u-acts' }, toggle, reset) : null, note.err, note.ok);
  }
  const add = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    const el = e.target.elements;
    try {
      await api('POST', '/app/api/users', { username: el.nu.value.trim(), display_name: el.nd.value.trim(),
        password: el.np.value, role: el.nr.value });
      toast(`${t('created')}: ${el.nu.value}`);
      m.done(`${t('created')}: ${el.nu.value}`);
      e.target.reset();
      await load();
    } catch (ex) { m.fail(ex.message); }
  } }, h('h3', {}, t('add_user')),
  h('label', { for: 'nu' }, t('username')), h('input', { id: 'nu', name: 'nu', required: true, autocomplete: 'off',
    autocapitalize: 'none' }),
  h('label', { for: 'nd' }, t('display_name')), h('input', { id: 'nd', name: 'nd', required: true }),
  h('label', { for: 'np' }, t('password')), h('input', { id: 'np', name: 'np', type: 'password', required: true,
    minLength: MIN_PW, autocomplete: 'new-password' }),
  h('label', { for: 'nr' }, t('role')), h('select', { id: 'nr', name: 'nr' },
    ['inspector', 'supervisor', 'admin'].map((r) => h('option', { value: r }, t(`r_${r}`)))),
  m.err, m.ok, h('button', { class: 'btn primary block', type: 'submit' }, t('add_user')));
  load();
  return h('section', { class: 'card', id: 'users' }, h('h2', {}, t('users')), list, add);
}
