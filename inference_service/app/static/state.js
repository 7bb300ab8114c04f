/* The app's shared state: the session (user, CSRF token), the taxonomy, the language. */
export const LS = window.localStorage;
export const st = {
  user: null, csrf: '', tax: null, lang: LS.getItem('hazardscan.lang') === 'en' ? 'en' : 'zh', seq: 0,
};
