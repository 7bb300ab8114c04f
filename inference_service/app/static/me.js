/* View: me: role, organisation, language, log out; 修改密码; admins: 用户管理 (account.js), 举报链接 (reports.js). */
import { api, loggedOut } from './api.js';
import { en, t } from './i18n.js';
import { passwordCard, usersCard } from './account.js';
import { h } from './dom.js';
import { reportLinksCard } from './reports.js';
import { setLang } from './app.js';
import { st } from './state.js';

export async function viewMe() {
  const u = st.user;
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
    passwordCard(), u.role === 'admin' ? [usersCard(), reportLinksCard()] : null);
}
