/* View: me: role, organisation, language, log out; admins add users. */
import { api, loggedOut } from './api.js';
import { en, t } from './i18n.js';
import { h, toast } from './dom.js';
import { setLang } from './app.js';
import { st } from './state.js';

export async function viewMe() {
  const u = st.user;
  const err = h('p', { class: 'err', role: 'alert' });
  const admin = u.role === 'admin' ? h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    const el = e.target.elements;
    try {
      await api('POST', '/app/api/users', { username: el.nu.value.trim(), display_name: el.nd.value.trim(),
        password: el.np.value, role: el.nr.value });
      toast(`${t('created')}: ${el.nu.value}`);
      e.target.reset();
    } catch (ex) { err.textContent = ex.message; }
  } }, h('h2', {}, t('add_user')),
  h('label', { for: 'nu' }, t('username')), h('input', { id: 'nu', name: 'nu', required: true, autocomplete: 'off' }),
  h('label', { for: 'nd' }, t('display_name')), h('input', { id: 'nd', name: 'nd', required: true }),
  h('label', { for: 'np' }, t('password')), h('input', { id: 'np', name: 'np', type: 'password', required: true,
    minLength: 8, autocomplete: 'new-password' }),
  h('label', { for: 'nr' }, t('role')), h('select', { id: 'nr', name: 'nr' },
    ['inspector', 'supervisor', 'admin'].map((r) => h('option', { value: r }, t(`r_${r}`)))),
  err, h('button', { class: 'btn primary block', type: 'submit' }, t('add_user'))) : null;
  return h('div', {}, h('h1', {}, t('me')),
    h('section', { class: 'card' }, h('h2', {}, u.display_name || u.username),
      h('div', { class: 'muted' }, `${t('role')}: ${t(`r_${u.role}`)}`),
      h('div', { class: 'muted' }, `${t('org')}: ${u.org?.name || ''}`),
      h('div', { class: 'btns' },
        h('button', { class: 'btn ghost', type: 'button', onclick: () => { setLang(en() ? 'zh' : 'en'); } },
          `${t('lang')}: ${en() ? 'English' : '中文'}`),
        h('button', { class: 'btn bad', type: 'button', 'data-act': 'logout', onclick: async () => {
          try { await api('POST', '/app/api/logout'); } catch { /* gone already */ }
          loggedOut();
        } }, t('logout')))),
    admin);
}
