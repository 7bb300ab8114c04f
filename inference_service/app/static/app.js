/* hazardscan inspector app (拍图识隐患): a single page, no framework, nothing fetched from outside.
 * Routes: #/login #/inspections #/new #/inspection/ID #/ledger #/stats #/me
 * Photos: chosen -> IndexedDB queue (UUID idempotency key) -> downscaled (long side 2048) -> uploaded with
 * progress -> removed from the queue only after a 2xx. The API is described in docs/app-api.md. */
'use strict';
(() => {
  const LS = window.localStorage;
  const MAX_SIDE = 2048;
  const JPEG_Q = 0.85;
  const st = {
    user: null, csrf: '', tax: null, lang: LS.getItem('hazardscan.lang') === 'en' ? 'en' : 'zh', seq: 0,
  };
  const $ = (sel, root = document) => root.querySelector(sel);

  /* ---------------------------------------------------------------- i18n */
  const STR = {
    zh: {
      brand: '拍图识隐患', loading: '加载中…', login: '登录', username: '用户名', password: '密码',
      login_title: '安全生产隐患排查', login_sub: '检查员登录', logout: '退出登录', nav_insp: '检查', nav_ledger: '台账',
      nav_stats: '统计', nav_me: '我的', inspections: '检查记录', new_insp: '新建检查', unit: '被检查单位',
      unit_name: '单位名称', address: '地址', credit: '统一社会信用代码', optional: '选填', scene: '检查场景',
      choose: '请选择', location: '位置', get_loc: '获取当前位置', loc_ok: '已定位（精度约 {0} 米）',
      loc_fail: '无法获取位置：{0}', loc_none: '未记录位置', start: '开始检查', photos: '张照片', hazards: '处隐患',
      more: '加载更多', none_yet: '还没有检查记录。点击“新建检查”开始。', inspector: '检查人', time: '时间',
      camera: '拍照', gallery: '相册选图', queue: '待上传', q_wait: '等待网络…', q_prep: '压缩中…',
      q_up: '上传中 {0}%', q_proc: 'AI 识别中…', q_fail: '上传失败：{0}', retry: '重试', discard: '放弃',
      discard_q: '放弃这张照片？它还没有上传。', q_safe: '照片已保存在本机，联网后自动上传，不会重复。', offline: '离线', offline_n: '离线 · {0} 张待传', pending_n: '{0} 张待传',
      found: '发现 {0} 处隐患', found0: '未识别到隐患', model: '模型', confirm: '确认', reject: '误报',
      adjust: '调整框', save_confirm: '保存并确认', cancel: '取消', add_missed: '补录隐患', draw_hint: '在照片上拖动，框出隐患位置',
      pick_hazard: '隐患类型', search: '搜索隐患', not_detectable: '模型暂不识别', note: '备注', save: '保存',
      st_pending: '待确认', st_confirmed: '已确认', st_rejected: '误报', conf: '置信度', by_inspector: '检查员补录',
      suspected: '疑似', basis: '依据', advice: '整改建议', docs: '文书', record: '现场检查记录', notice: '隐患整改通知书',
      pdf: 'PDF', no_photos: '还没有照片。拍照或从相册选图，AI 会标出隐患。', need_box: '请先在照片上画出隐患位置',
      need_hazard: '请选择隐患类型', saved: '已保存', ledger: '隐患台账', all: '全部', s_open: '待整改',
      s_in_progress: '整改中', s_pending_review: '待复查', s_closed: '已销号', overdue: '已逾期', filter: '筛选',
      apply: '应用', reset: '重置', severity: '等级', hazard: '隐患', from: '从', to: '到', export: '导出',
      deadline: '整改期限', responsible: '责任人', begin_fix: '开始整改', upload_fix: '上传整改照片',
      close_item: '复查销号', reopen: '退回整改', wait_review: '等待主管复查销号', ai_failed: 'AI 复查未通过',
      ai_failed_long: 'AI 复查未通过：整改照片中仍识别到该隐患，请现场核实。', ai_passed: 'AI 复查通过',
      override: '核实后仍然销号（需填写说明）', override_note: '销号说明', need_note: '请填写说明',
      history: '处理记录', closed_at: '销号时间', view_insp: '查看检查记录', fix_photo: '整改照片', no_items: '没有符合条件的隐患。',
      stats: '统计分析', period: '时间范围', assign: '指派 / 调整期限', assignee: '指派给',
      ai_none: 'AI 无法复查，请人工核实', insp_pending: '无网络：检查已保存在本机，联网后自动创建并上传照片。',
      sync_pending: '待同步', offline_view: '离线：显示本机保存的检查信息；新拍的照片保存在本机，联网后自动上传。', total_hz: '隐患总数', rate: '整改率', closed_n: '已销号', overdue_n: '逾期未改',
      in_time: '按期销号', open_n: '未销号', by_week: '每周发现隐患', by_sev: '按等级', by_type: '按隐患类型',
      by_unit: '按单位', by_insp: '按检查人', field: '模型现场准确率（按类别）', field_sub: '准确率 = 确认 ÷ (确认 + 误报)；漏检 = 检查员补录',
      confirmed: '确认', rejected: '误报', added: '漏检', no_data: '暂无数据', me: '我的', role: '角色',
      r_inspector: '检查员', r_supervisor: '主管', r_admin: '管理员', org: '单位', lang: '语言', offline_err: '网络不可用',
      geo_na: '此浏览器不支持定位', retake: '建议重拍', days_over: '逾期 {0} 天', due_today: '今日到期', days_left: '剩 {0} 天',
      skip: '跳到正文', model_na: '—', add_user: '添加用户', display_name: '姓名', created: '已创建',
      n_items: '共 {0} 条', downscale_off: '（不压缩）', cred_bad: '统一社会信用代码应为 18 位',
    },
    en: {
      brand: 'HazardScan', loading: 'Loading…', login: 'Log in', username: 'Username', password: 'Password',
      login_title: 'Workplace safety inspection', login_sub: 'Inspector login', logout: 'Log out',
      nav_insp: 'Inspections', nav_ledger: 'Ledger', nav_stats: 'Statistics', nav_me: 'Me', inspections: 'Inspections',
      new_insp: 'New inspection', unit: 'Inspected unit', unit_name: 'Unit name', address: 'Address',
      credit: 'Unified social credit code', optional: 'optional', scene: 'Scene', choose: 'Choose…',
      location: 'Location', get_loc: 'Use my location', loc_ok: 'Located (±{0} m)', loc_fail: 'No location: {0}',
      loc_none: 'No location', start: 'Start inspection', photos: 'photos', hazards: 'hazards', more: 'Load more',
      none_yet: 'No inspections yet. Tap “New inspection” to start.', inspector: 'Inspector', time: 'Time',
      camera: 'Camera', gallery: 'Gallery', queue: 'Waiting to upload', q_wait: 'Waiting for network…',
      q_prep: 'Compressing…', q_up: 'Uploading {0}%', q_proc: 'AI analysing…', q_fail: 'Upload failed: {0}',
      retry: 'Retry', discard: 'Discard', discard_q: 'Discard this photo? It has not been uploaded.',
      q_safe: 'Saved on this phone; uploads by itself when online, never twice.', offline: 'Offline',
      offline_n: 'Offline · {0} queued', pending_n: '{0} queued', found: '{0} hazard(s) found', found0: 'No hazard found',
      model: 'Model', confirm: 'Confirm', reject: 'False alarm', adjust: 'Adjust box', save_confirm: 'Save & confirm',
      cancel: 'Cancel', add_missed: 'Add missed hazard', draw_hint: 'Drag on the photo to box the hazard',
      pick_hazard: 'Hazard', search: 'Search hazards', not_detectable: 'not detected by the model yet', note: 'Note',
      save: 'Save', st_pending: 'To review', st_confirmed: 'Confirmed', st_rejected: 'False alarm', conf: 'Confidence',
      by_inspector: 'Added by inspector', suspected: 'Suspected', basis: 'Legal basis', advice: 'Rectification',
      docs: 'Documents', record: 'Inspection record', notice: 'Rectification notice', pdf: 'PDF',
      no_photos: 'No photos yet. Take or pick photos; the AI marks the hazards.', need_box: 'Draw the hazard on the photo first',
      need_hazard: 'Choose the hazard', saved: 'Saved', ledger: 'Hazard ledger', all: 'All', s_open: 'Open',
      s_in_progress: 'In progress', s_pending_review: 'To review', s_closed: 'Closed', overdue: 'Overdue', filter: 'Filter',
      apply: 'Apply', reset: 'Reset', severity: 'Severity', hazard: 'Hazard', from: 'From', to: 'To', export: 'Export',
      deadline: 'Deadline', responsible: 'Responsible', begin_fix: 'Start rectification',
      upload_fix: 'Upload rectification photo', close_item: 'Review & close', reopen: 'Reject the fix',
      wait_review: 'Waiting for a supervisor to close', ai_failed: 'AI re-check failed',
      ai_failed_long: 'AI re-check failed: the hazard is still seen in the rectification photo. Verify on site.',
      ai_passed: 'AI re-check passed', override: 'Close anyway after checking (note required)', override_note: 'Note',
      need_note: 'Please write a note', history: 'History', closed_at: 'Closed', view_insp: 'Open inspection',
      fix_photo: 'Rectification photo', no_items: 'No matching hazards.', stats: 'Statistics', period: 'Period', assign: 'Assign / deadline', assignee: 'Assign to',
      ai_none: 'No AI re-check: judge by eye',
      insp_pending: 'No signal: the inspection is saved on this phone; it is created and its photos uploaded when online.',
      sync_pending: 'Not synced',
      offline_view: 'Offline: showing what this phone kept; new photos wait on the phone and upload when online.', total_hz: 'Hazards',
      rate: 'Rectified', closed_n: 'Closed', overdue_n: 'Overdue', in_time: 'Closed in time', open_n: 'Not closed',
      by_week: 'Hazards per week', by_sev: 'By severity', by_type: 'By hazard', by_unit: 'By unit',
      by_insp: 'By inspector', field: 'Model precision in the field (per class)',
      field_sub: 'precision = confirmed ÷ (confirmed + false alarms); missed = added by inspectors',
      confirmed: 'confirmed', rejected: 'false', added: 'missed', no_data: 'No data yet', me: 'Me', role: 'Role',
      r_inspector: 'Inspector', r_supervisor: 'Supervisor', r_admin: 'Admin', org: 'Organisation', lang: 'Language',
      offline_err: 'Network unavailable', geo_na: 'Location not available in this browser', retake: 'Please retake',
      days_over: '{0} d overdue', due_today: 'Due today', days_left: '{0} d left', skip: 'Skip to content',
      model_na: '—', add_user: 'Add user', display_name: 'Name', created: 'Created', n_items: '{0} items',
      downscale_off: '(no downscale)', cred_bad: 'The credit code has 18 characters',
    },
  };
  const t = (k, ...a) => {
    let s = STR[st.lang][k] ?? STR.zh[k] ?? k;
    a.forEach((v, i) => { s = s.replace(`{${i}}`, v); });
    return s;
  };
  const en = () => st.lang === 'en';

  /* ---------------------------------------------------------------- DOM helpers */
  const SVG = 'http://www.w3.org/2000/svg';
  /** Append the kids that are not null / false (Node.append would write them as text). */
  const put = (el, ...kids) => {
    for (const c of kids.flat(9)) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
    return el;
  };
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'style') Object.assign(el.style, v);
      else if (k === 'class' || k === 'for' || k.startsWith('aria-') || k.startsWith('data-') || k === 'role') {
        el.setAttribute(k, v);
      } else if (k in el) el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    return put(el, kids);
  }
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, v);
    return put(el, kids);
  }
  const ICON = {
    list: 'M4 5h16v2H4V5Zm0 6h16v2H4v-2Zm0 6h10v2H4v-2Z',
    ledger: 'M6 2h9l5 5v15H6V2Zm8 1.5V8h4.5L14 3.5ZM8 12h8v-1.5H8V12Zm0 3.5h8V14H8v1.5Zm0 3.5h5v-1.5H8V19Z',
    chart: 'M4 20V10h3v10H4Zm6.5 0V4h3v16h-3ZM17 20v-7h3v7h-3Z',
    me: 'M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9Zm0 2c-4.4 0-8 2.2-8 5v2h16v-2c0-2.8-3.6-5-8-5Z',
    camera: 'M9 3 7.2 5H4a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-3.2L15 3H9Zm3 5a4.5 4.5 0 1 1 0 9 4.5 4.5 0 0 1 0-9Z',
    image: 'M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm1 13h14l-4.5-6-3.5 4.5-2.5-3L5 17Z',
    plus: 'M11 4h2v7h7v2h-7v7h-2v-7H4v-2h7V4Z',
    warn: 'M12 2 1 21h22L12 2Zm-1 7h2v6h-2V9Zm0 8h2v2h-2v-2Z',
    doc: 'M6 2h9l5 5v15H6V2Zm8 1.5V8h4.5L14 3.5Z',
    pin: 'M12 2a7 7 0 0 0-7 7c0 5 7 13 7 13s7-8 7-13a7 7 0 0 0-7-7Zm0 9.5A2.5 2.5 0 1 1 12 6.5a2.5 2.5 0 0 1 0 5Z',
  };
  const icon = (name) => s('svg', { class: 'ic', viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' },
    s('path', { d: ICON[name], fill: 'currentColor' }));

  let toastTimer = 0;
  function toast(msg) {
    const el = $('#toast');
    el.textContent = msg;
    el.classList.add('show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove('show'), 3500);
  }
  const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString(en() ? 'en-GB' : 'zh-CN', {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }) : '');
  const fmtDate = (iso) => (iso ? new Date(iso).toLocaleDateString(en() ? 'en-GB' : 'zh-CN') : '');
  const pct = (x) => (x == null ? '—' : `${Math.round(x * 100)}%`);
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();  // secure contexts only (https, localhost)
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  /* ---------------------------------------------------------------- API */
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  const langHeader = () => (en() ? 'en' : 'zh-CN');
  async function api(method, path, body, opts = {}) {
    const headers = { Accept: 'application/json', 'Accept-Language': langHeader() };
    if (method !== 'GET') headers['X-CSRF-Token'] = st.csrf;
    let payload = body;
    if (body && !(body instanceof FormData)) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
    } catch {
      throw new ApiError(0, 'network', t('offline_err'));
    }
    if (r.status === 204) return null;
    let data = null;
    try { data = await r.json(); } catch { /* not JSON */ }
    if (r.ok) return data;
    const err = new ApiError(r.status, data?.error?.code || `http_${r.status}`,
      data?.error?.message || `${r.status} ${r.statusText}`);
    if (r.status === 403 && /csrf/i.test(err.code) && !opts.retried) {
      const before = st.csrf;  // a stale (or not yet fetched) token: fetch a fresh one and try once more
      if (await refreshMe() && st.csrf !== before) return api(method, path, body, { ...opts, retried: true });
    }
    if (r.status === 401 && !opts.noLogin) loggedOut();
    throw err;
  }
  function loggedOut() {
    st.user = null; st.csrf = '';
    LS.removeItem('hazardscan.user');
    LS.removeItem('hazardscan.recent');
    go('#/login');
  }
  function loggedIn(me) {
    st.user = me.user; st.csrf = me.csrf_token;
    LS.setItem('hazardscan.user', JSON.stringify(me.user));
  }
  /** The session from the server; without signal, the last user of this phone (the token comes when online). */
  async function refreshMe() {
    try {
      loggedIn(await api('GET', '/app/api/me', null, { noLogin: true }));
      return true;
    } catch (e) {
      if (e.status === 0 && !st.user) st.user = JSON.parse(LS.getItem('hazardscan.user') || 'null');
      else if (e.status === 401 && st.user) loggedOut();
      return e.status === 0 && Boolean(st.user);
    }
  }
  let taxPromise = null;
  function taxonomy() {  // kept on the phone too: starting an inspection needs the scenes without signal
    taxPromise ||= api('GET', '/app/api/taxonomy').then((x) => {
      LS.setItem('hazardscan.taxonomy', JSON.stringify(x));
      return x;
    }).catch((e) => {
      taxPromise = null;
      const kept = e.status === 0 && LS.getItem('hazardscan.taxonomy');
      if (!kept) throw e;
      return JSON.parse(kept);
    }).then((x) => { st.tax = x; return x; });
    return taxPromise;
  }
  const hazardById = (id) => st.tax?.hazards.find((x) => x.id === id);
  const sevName = (id) => {
    const sv = st.tax?.severities?.find((x) => x.id === id);
    return sv ? (en() ? (sv.name_en || id) : sv.name_zh) : id;
  };
  const sceneName = (id) => {
    const sc = st.tax?.scenes?.find((x) => x.id === id || x.name_zh === id);
    return sc ? (en() ? sc.name_en : sc.name_zh) : id;
  };
  const hzName = (o) => (en() ? o.name_en || o.name_zh : o.name_zh || o.name_en) || o.hazard_id || '';
  const sevBadge = (sev) => h('span', { class: `sev sev-${sev}` }, sevName(sev));

  /* ---------------------------------------------------------------- offline photo queue (IndexedDB) */
  const idb = {
    db: null,
    open() {
      this.db ||= new Promise((res, rej) => {
        const r = indexedDB.open('hazardscan', 1);
        r.onupgradeneeded = () => r.result.createObjectStore('queue', { keyPath: 'key' });
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      return this.db;
    },
    async run(mode, fn) {
      const db = await this.open();
      return new Promise((res, rej) => {
        const tx = db.transaction('queue', mode);
        const req = fn(tx.objectStore('queue'));
        tx.oncomplete = () => res(req.result);
        tx.onerror = () => rej(tx.error);
        tx.onabort = () => rej(tx.error);
      });
    },
    put(rec) { return this.run('readwrite', (q) => q.put(rec)); },
    del(key) { return this.run('readwrite', (q) => q.delete(key)); },
    get(key) { return this.run('readonly', (q) => q.get(key)); },
    all() { return this.run('readonly', (q) => q.getAll()); },
  };
  const live = new Map();  // key -> {phase, frac}: what the queue is doing right now (not persisted)
  const listeners = new Set();
  let queued = [];  // a light copy of the queue (no bytes) for the views
  async function notify() {
    try {
      queued = (await idb.all()).filter((r) => r.user === st.user?.id)
        .map(({ data, ...rest }) => ({ ...rest, size: data?.byteLength || 0 }))
        .sort((a, b) => a.created - b.created);
    } catch { queued = []; }
    netBadge();
    for (const f of listeners) f();
  }
  const thumbs = new Map();  // key -> object URL
  async function thumb(key) {
    if (!thumbs.has(key)) {
      const rec = await idb.get(key);
      thumbs.set(key, rec ? URL.createObjectURL(new Blob([rec.data], { type: rec.type })) : '');
    }
    return thumbs.get(key);
  }

  /** Store the chosen files first (each with its idempotency key), then try to upload. */
  async function enqueue(files, kind, target) {
    for (const f of files) {
      const data = await f.arrayBuffer();
      await idb.put({ key: uuid(), kind, target: String(target), user: st.user.id, name: f.name || 'photo.jpg',
        type: f.type || 'application/octet-stream', data, created: Date.now(), scaled: false, error: null,
        taken_at: f.lastModified ? new Date(f.lastModified).toISOString() : null });
    }
    await notify();
    pump();
  }

  /** Downscale to a long side of MAX_SIDE, EXIF orientation applied; null when the file is fine as it is. */
  async function downscale(blob) {
    const bmp = await createImageBitmap(blob, { imageOrientation: 'from-image' });
    const k = Math.min(1, MAX_SIDE / Math.max(bmp.width, bmp.height));
    if (k === 1 && blob.type === 'image/jpeg' && blob.size < 2.5e6) { bmp.close(); return null; }
    const w = Math.max(1, Math.round(bmp.width * k));
    const hgt = Math.max(1, Math.round(bmp.height * k));
    let out;
    if (typeof OffscreenCanvas !== 'undefined') {
      const c = new OffscreenCanvas(w, hgt);
      const g = c.getContext('2d');
      g.imageSmoothingQuality = 'high';
      g.drawImage(bmp, 0, 0, w, hgt);
      out = await c.convertToBlob({ type: 'image/jpeg', quality: JPEG_Q });
    } else {
      const c = h('canvas', { width: w, height: hgt });
      const g = c.getContext('2d');
      g.imageSmoothingQuality = 'high';
      g.drawImage(bmp, 0, 0, w, hgt);
      out = await new Promise((res) => c.toBlob(res, 'image/jpeg', JPEG_Q));
    }
    bmp.close();
    return out;
  }

  function xhrPost(url, form, onProgress) {
    return new Promise((res) => {
      const x = new XMLHttpRequest();
      x.open('POST', url);
      x.setRequestHeader('X-CSRF-Token', st.csrf);
      x.setRequestHeader('Accept', 'application/json');
      x.setRequestHeader('Accept-Language', langHeader());
      x.timeout = 180000;
      x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      x.upload.onload = () => onProgress(1);
      x.onload = () => {
        let data = null;
        try { data = JSON.parse(x.responseText); } catch { /* not JSON */ }
        res({ status: x.status, data });
      };
      x.onerror = x.ontimeout = x.onabort = () => res({ status: 0, data: null });
      x.send(form);
    });
  }

  const uploadHooks = { photo: new Set(), rect: new Set(), insp: new Set() };
  /* An inspection started without signal lives as 'local-<client_id>' until the server has created it; its
   * photos wait for that. The map local id -> server id outlives the page (a photo chosen meanwhile). */
  const localIds = () => JSON.parse(LS.getItem('hazardscan.localIds') || '{}');
  function rememberLocal(local, id) {
    const m = localIds();
    m[local] = String(id);
    LS.setItem('hazardscan.localIds', JSON.stringify(m));
  }
  async function queueInspection(body) {
    await idb.put({ key: body.client_id, kind: 'insp', target: '', user: st.user.id, name: body.unit.name, body,
      created: Date.now(), error: null });
    await notify();
    pump();
    return `local-${body.client_id}`;
  }
  /** Create a queued inspection: 'ok' | 'stop' | 'failed' like uploadOne. */
  async function createOne(rec) {
    setLive(rec.key, 'up', 0);
    try {
      const ins = await api('POST', '/app/api/inspections', rec.body, { noLogin: true });
      rememberLocal(`local-${rec.key}`, ins.id);
      await idb.del(rec.key);
      live.delete(rec.key);
      for (const f of [...uploadHooks.insp]) f(rec, ins);
      return 'ok';
    } catch (e) {
      if (e.status === 0 || e.status === 401 || e.status === 408 || e.status === 429 || e.status >= 500) {
        setLive(rec.key, 'wait');
        return 'stop';
      }
      rec.error = e.message;
      await idb.put(rec);
      live.delete(rec.key);
      return 'failed';
    }
  }
  function setLive(key, phase, frac = 0) { live.set(key, { phase, frac }); for (const f of listeners) f(); }

  /** One upload attempt: 'ok' | 'stop' (offline, server trouble: try later) | 'failed' (needs the user). */
  async function uploadOne(rec) {
    setLive(rec.key, 'prep');
    if (!rec.scaled) {
      if (LS.getItem('hazardscan.noDownscale') !== '1') {
        try {
          const small = await downscale(new Blob([rec.data], { type: rec.type }));
          if (small) { rec.data = await small.arrayBuffer(); rec.type = 'image/jpeg'; }
        } catch { /* not decodable here: the server says what is wrong with it */ }
      }
      rec.scaled = true;
      await idb.put(rec);
    }
    const url = rec.kind === 'rect' ? `/app/api/ledger/${rec.target}/rectification`
      : `/app/api/inspections/${rec.target}/photos`;
    const form = new FormData();
    const name = rec.type === 'image/jpeg' ? rec.name.replace(/\.\w+$/, '') + '.jpg' : rec.name;
    form.append('photo', new Blob([rec.data], { type: rec.type }), name);
    form.append('idempotency_key', rec.key);
    if (rec.taken_at) form.append('taken_at', rec.taken_at);
    setLive(rec.key, 'up', 0);
    const r = await xhrPost(url, form, (f) => setLive(rec.key, f >= 1 ? 'proc' : 'up', f));
    if (r.status >= 200 && r.status < 300) {
      await idb.del(rec.key);
      live.delete(rec.key);
      if (thumbs.get(rec.key)) URL.revokeObjectURL(thumbs.get(rec.key));
      thumbs.delete(rec.key);
      for (const f of [...uploadHooks[rec.kind]]) f(rec, r.data);  // a hook may add hooks
      return 'ok';
    }
    if (r.status === 403 && /csrf/i.test(r.data?.error?.code || '')) {
      const before = st.csrf;
      setLive(rec.key, 'wait');
      return await refreshMe() && st.csrf !== before ? 'again' : 'stop';
    }
    if (r.status === 0 || r.status === 401 || r.status === 408 || r.status === 429 || r.status >= 500) {
      setLive(rec.key, 'wait');
      if (r.status === 401) loggedOut();
      return 'stop';
    }
    rec.error = r.data?.error?.message || `HTTP ${r.status}`;
    await idb.put(rec);
    live.delete(rec.key);
    return 'failed';
  }

  let pumping = false;
  let pumpAgain = false;
  let retryTimer = 0;
  async function pump() {
    if (pumping) { pumpAgain = true; return; }
    pumping = true;
    let stopped = false;
    try {
      do {
        pumpAgain = false;
        if (!st.user || !navigator.onLine) { stopped = true; break; }
        const recs = (await idb.all()).filter((r) => r.user === st.user.id && !r.error)
          .sort((a, b) => a.created - b.created);
        for (const rec of recs) {
          if (rec.target.startsWith('local-')) {  // a photo of an inspection not created yet
            const id = localIds()[rec.target];
            if (!id) continue;
            rec.target = id;
            await idb.put(rec);
          }
          const res = rec.kind === 'insp' ? await createOne(rec) : await uploadOne(rec);
          await notify();
          if (res === 'again') { pumpAgain = true; break; }
          if (res === 'stop') { stopped = true; break; }
        }
      } while (pumpAgain && !stopped);
    } catch (e) {
      stopped = true;
      console.warn('upload queue', e);
    } finally {
      pumping = false;
      await notify();
    }
    clearTimeout(retryTimer);
    if (stopped && queued.some((r) => !r.error)) retryTimer = setTimeout(pump, 15000);
  }
  window.addEventListener('online', () => { netBadge(); pump(); });
  window.addEventListener('offline', netBadge);

  function netBadge() {
    const el = $('#net');
    if (!el) return;
    const n = queued.filter((r) => !r.error).length;
    el.textContent = !navigator.onLine ? (n ? t('offline_n', n) : t('offline')) : (n ? t('pending_n', n) : '');
  }

  /** The queue card of one inspection (or ledger item): what waits, its progress, failed ones to retry. */
  function queueCard(kind, target) {
    const box = h('section', { class: 'card queue', 'aria-live': 'polite', hidden: true, 'data-queue': target });
    const paint = async () => {
      if (!box.isConnected && box.dataset.painted) { listeners.delete(paint); return; }
      box.dataset.painted = '1';
      const mine = queued.filter((r) => r.kind === kind && r.target === String(target));
      box.hidden = mine.length === 0;
      if (!mine.length) { box.replaceChildren(); return; }
      const rows = await Promise.all(mine.map(async (r) => {
        const lv = live.get(r.key);
        let text = t('q_wait');
        let bar = null;
        if (r.error) text = t('q_fail', r.error);
        else if (lv?.phase === 'prep') text = t('q_prep');
        else if (lv?.phase === 'up') {
          text = t('q_up', Math.round(lv.frac * 100));
          bar = h('progress', { max: 100, value: Math.round(lv.frac * 100) });
        } else if (lv?.phase === 'proc') text = t('q_proc');
        const acts = r.error ? h('div', { class: 'row' },
          h('button', { class: 'btn ghost', type: 'button', onclick: async () => {
            const rec = await idb.get(r.key); rec.error = null; await idb.put(rec); await notify(); pump(); } }, t('retry')),
          h('button', { class: 'btn bad', type: 'button', onclick: async () => {
            if (!window.confirm(t('discard_q'))) return;
            await idb.del(r.key); await notify(); } }, t('discard'))) : null;
        return h('div', { class: 'qi', 'data-key': r.key },
          h('img', { src: await thumb(r.key), alt: '' }),
          h('div', { class: 'grow' }, h('div', { class: 'small' }, r.name),
            h('div', { class: r.error ? 'err small' : 'muted small q-status' }, text), bar), acts);
      }));
      box.replaceChildren(h('h2', {}, `${t('queue')} (${mine.length})`),
        h('p', { class: 'muted small' }, t('q_safe')), ...rows);
    };
    listeners.add(paint);
    paint();
    return box;
  }

  /* ---------------------------------------------------------------- router */
  const routes = [
    [/^#\/login$/, viewLogin], [/^#\/inspections$/, viewList], [/^#\/new$/, viewNew],
    [/^#\/inspection\/([\w-]+)$/, viewInspection], [/^#\/ledger$/, viewLedger], [/^#\/stats$/, viewStats],
    [/^#\/me$/, viewMe],
  ];
  function go(hash) { if (location.hash !== hash) location.hash = hash; else route(); }
  async function route() {
    const seq = ++st.seq;
    const hash = location.hash || '#/inspections';
    const main = $('#view');
    if (!st.user && hash !== '#/login') {
      if (!(await refreshMe())) { go('#/login'); return; }
      pump();
    }
    const hit = routes.find(([re]) => re.test(hash)) || routes[1];
    const args = hash.match(hit[0])?.slice(1) || [];
    nav(hash);
    main.replaceChildren(h('p', { class: 'empty' }, t('loading')));
    let el;
    try {
      if (hit[1] !== viewLogin) await taxonomy();
      el = await hit[1](...args);
    } catch (e) {
      if (e.status === 401) return;
      el = h('div', { class: 'card' }, h('p', { class: 'err' }, e.message),
        h('button', { class: 'btn', type: 'button', onclick: route }, t('retry')));
    }
    if (seq !== st.seq) return;  // the user went elsewhere meanwhile
    main.replaceChildren(el);
    window.scrollTo(0, 0);
  }
  function nav(hash) {
    const el = $('#nav');
    el.hidden = !st.user || hash === '#/login';
    const items = [['#/inspections', 'list', 'nav_insp'], ['#/ledger', 'ledger', 'nav_ledger'],
      ['#/stats', 'chart', 'nav_stats'], ['#/me', 'me', 'nav_me']];
    const cur = hash.startsWith('#/inspection') || hash === '#/new' ? '#/inspections' : hash;
    el.setAttribute('aria-label', en() ? 'Main' : '主导航');
    el.replaceChildren(...items.map(([href, ic, label]) => h('a', { href,
      'aria-current': cur === href ? 'page' : null }, icon(ic), t(label))));
  }
  function applyLang() {
    document.documentElement.lang = en() ? 'en' : 'zh-CN';
    document.title = en() ? 'HazardScan · inspections' : '拍图识隐患 · hazardscan';
    $('#brand-text').textContent = t('brand');
    const b = $('#lang');
    b.textContent = en() ? '中文' : 'EN';
    b.setAttribute('aria-label', en() ? '切换到中文' : 'Switch to English');
    $('.skip').textContent = t('skip');
    netBadge();
  }

  /* ---------------------------------------------------------------- views: login, list, new */
  function viewLogin() {
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
        go('#/inspections');
      } catch (ex) {
        err.textContent = ex.message;
      } finally { btn.disabled = false; }
    } },
    h('h1', {}, t('login_title')), h('p', { class: 'muted' }, t('login_sub')),
    h('label', { for: 'u' }, t('username')),
    h('input', { id: 'u', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' }),
    h('label', { for: 'p' }, t('password')),
    h('input', { id: 'p', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    err, h('button', { class: 'btn primary block', type: 'submit' }, t('login')));
    return form;
  }

  async function viewList() {
    const wrap = h('div', {});
    const list = h('ul', { class: 'list' });
    let offset = 0;
    const more = h('button', { class: 'btn ghost block', type: 'button', hidden: true, onclick: () => load() },
      t('more'));
    const title = h('h1', {}, t('inspections'));
    if (!offset) {
      for (const q of queued.filter((x) => x.kind === 'insp')) {
        list.append(h('li', {}, h('a', { class: 'card item', href: `#/inspection/local-${q.key}`, 'data-local': q.key },
          h('div', { class: 'row spread' }, h('h3', { class: 'grow' }, q.body.unit.name),
            h('span', { class: 'pill hz-n' }, t('sync_pending'))),
          h('div', { class: 'muted' }, q.body.unit.address))));
      }
    }
    async function load() {
      const r = await api('GET', `/app/api/inspections?limit=20&offset=${offset}`);
      offset += r.items.length;
      title.textContent = `${t('inspections')} (${r.total})`;
      if (!r.total && !list.children.length) list.append(h('li', { class: 'empty' }, t('none_yet')));
      for (const it of r.items) {
        list.append(h('li', {}, h('a', { class: 'card item', href: `#/inspection/${it.id}` },
          h('div', { class: 'row spread' }, h('h3', { class: 'grow' }, it.unit.name),
            h('span', { class: 'pill' }, sceneName(it.scene))),
          h('div', { class: 'muted' }, it.unit.address),
          h('div', { class: 'kpis' }, h('span', { class: 'muted small grow' }, fmtTime(it.created_at)),
            h('span', { class: 'pill' }, `${it.photo_count} ${t('photos')}`),
            h('span', { class: `pill${it.hazard_count ? ' hz-n' : ''}` }, `${it.hazard_count} ${t('hazards')}`)))));
      }
      more.hidden = offset >= r.total;
    }
    try {
      await load();
    } catch (e) {
      if (e.status !== 0) throw e;
      list.append(h('li', { class: 'err' }, e.message));  // offline: what is queued on the phone still shows
    }
    list.style.marginTop = '12px';
    return put(wrap, title, h('a', { class: 'btn primary block', href: '#/new' }, icon('plus'), t('new_insp')), list, more);
  }

  function viewNew() {
    const clientId = uuid();  // a retried create (double tap, flaky network) returns the same inspection
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
        if (!navigator.onLine) { go(`#/inspection/${await queueInspection(body)}`); return; }
        const ins = await api('POST', '/app/api/inspections', body);
        go(`#/inspection/${ins.id}`);
      } catch (ex) {
        if (ex.status === 0) { go(`#/inspection/${await queueInspection(body)}`); return; }  // no signal
        err.textContent = ex.message;
      } finally { btn.disabled = false; }
    } },
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
    return form;
  }

  /* ---------------------------------------------------------------- view: one inspection */
  function keepRecent(ins) {  // the last 20 inspections opened, without photos, for a reload without signal
    const m = JSON.parse(LS.getItem('hazardscan.recent') || '{}');
    const { photos, ...light } = ins;
    delete m[ins.id];
    m[ins.id] = light;
    const ids = Object.keys(m);
    for (const old of ids.slice(0, Math.max(0, ids.length - 20))) delete m[old];
    LS.setItem('hazardscan.recent', JSON.stringify(m));
  }
  /** An inspection waiting in the queue, shaped like the server's (no photos yet). */
  async function localInspection(id) {
    const rec = await idb.get(id.slice('local-'.length));
    if (!rec) throw new ApiError(404, 'not_found', en() ? 'This inspection is no longer queued.' : '该检查已不在待上传队列中。');
    return { ...rec.body, id, local: true, error: rec.error, photos: [], created_at: new Date(rec.created).toISOString(),
      inspector: { display_name: st.user.display_name } };
  }
  async function viewInspection(id) {
    if (id.startsWith('local-') && localIds()[id]) { location.replace(`#/inspection/${localIds()[id]}`); return h('p', {}); }
    let ins;
    if (id.startsWith('local-')) ins = await localInspection(id);
    else {
      try {
        ins = await api('GET', `/app/api/inspections/${id}`);
        keepRecent(ins);
      } catch (e) {  // no signal: what this phone saw of it last, enough to go on taking photos
        const kept = e.status === 0 && JSON.parse(LS.getItem('hazardscan.recent') || '{}')[id];
        if (!kept) throw e;
        ins = { ...kept, photos: [], offline: true };
      }
    }
    const local = Boolean(ins.local);
    const photosEl = h('div', { class: 'photos' });
    const emptyEl = h('p', { class: 'empty' }, t('no_photos'));
    const pick = (capture) => h('label', { class: `btn ${capture ? 'primary' : ''} filepick` },
      icon(capture ? 'camera' : 'image'), t(capture ? 'camera' : 'gallery'),
      h('input', { type: 'file', accept: 'image/*', capture: capture ? 'environment' : null, multiple: !capture,
        'aria-label': t(capture ? 'camera' : 'gallery'), 'data-pick': capture ? 'camera' : 'gallery',
        onchange: async (e) => {
          const files = [...e.target.files];
          e.target.value = '';
          if (files.length) await enqueue(files, 'photo', ins.id);
        } }));
    const addPhoto = (p) => {
      const old = photosEl.querySelector(`[data-photo="${p.id}"]`);
      const el = photoCard(p);
      if (old) old.replaceWith(el); else photosEl.prepend(el);
      emptyEl.hidden = true;
    };
    const hook = (rec, photo) => {
      if (!photosEl.isConnected) { uploadHooks.photo.delete(hook); return; }
      if (rec.target === String(ins.id) && photo?.id) addPhoto(photo);
    };
    uploadHooks.photo.add(hook);
    const created = (rec, made) => {  // the server has created this (local) inspection: show the real one
      if (!photosEl.isConnected) { uploadHooks.insp.delete(created); return; }
      if (`local-${rec.key}` === ins.id) location.replace(`#/inspection/${made.id}`);
    };
    if (local) uploadHooks.insp.add(created);
    if (ins.offline) window.addEventListener('online', () => { if (photosEl.isConnected) route(); }, { once: true });
    for (const p of ins.photos || []) addPhoto(p);
    emptyEl.hidden = (ins.photos || []).length > 0;
    const u = ins.unit;
    const docLink = (path, label, pdf) => h('a', { class: 'btn ghost', href: `/app/inspections/${ins.id}/${path}`,
      target: pdf ? null : '_blank', rel: 'noopener', download: pdf ? `${path.replace('.pdf', '')}-${ins.id}.pdf` : null,
      'data-doc': path }, icon('doc'), label);
    return h('div', {},
      h('section', { class: 'card' },
        h('h1', {}, u.name),
        h('div', { class: 'muted' }, u.address),
        u.credit_code ? h('div', { class: 'muted small' }, `${t('credit')}: ${u.credit_code}`) : null,
        h('div', { class: 'kpis' }, h('span', { class: 'pill' }, sceneName(ins.scene)),
          h('span', { class: 'pill' }, `${t('inspector')}: ${ins.inspector?.display_name || ''}`),
          h('span', { class: 'pill' }, fmtTime(ins.created_at)),
          ins.location ? h('span', { class: 'pill' }, icon('pin'),
            `${(+ins.location.lat).toFixed(4)}, ${(+ins.location.lon).toFixed(4)}`) : null),
        local ? h('p', { class: ins.error ? 'err' : 'warn', 'data-local': 'pending' },
          ins.error ? t('q_fail', ins.error) : t('insp_pending')) : null,
        ins.offline ? h('p', { class: 'warn', 'data-offline': 'view' }, t('offline_view')) : null),
      h('div', { class: 'fab-row' }, pick(true), pick(false)),
      queueCard('photo', ins.id),
      emptyEl, photosEl,
      local ? null : h('section', { class: 'card' }, h('h2', {}, t('docs')), h('div', { class: 'docs' },
        docLink('record', t('record')), docLink('record.pdf', `${t('record')} ${t('pdf')}`, true),
        docLink('notice', t('notice')), docLink('notice.pdf', `${t('notice')} ${t('pdf')}`, true))));
  }

  /* One photo: the image with boxes, its warnings, a card per finding, confirm / reject / adjust / add. */
  function photoCard(photo) {
    const ui = { mode: 'view', fid: null, box: null };  // mode: view | adjust | add
    const card = h('section', { class: 'card', 'data-photo': photo.id });
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
      for (const f of photo.findings || []) {
        if (ui.mode !== 'view' && f.id === ui.fid) continue;
        const el = h('div', { class: `box b-${f.severity}${f.status === 'rejected' ? ' rejected' : ''}${
          f.box[1] / H < 0.06 ? ' low-y' : ''}${f.box[0] / W > 0.5 ? ' right-x' : ''}` }, h('span', {}, `${hzName(f)}${f.confidence != null ? ` ${pct(f.confidence)}` : ''}`));
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
    }
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
      if (ui.mode === 'view' || e.target.classList.contains('handle')) return;
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
    async function decide(f, decision, box) {
      try {
        const body = { decision };
        if (box) body.box = box;
        const nf = await api('POST', `/app/api/findings/${f.id}/decision`, body);
        Object.assign(f, nf);
        ui.mode = 'view'; ui.fid = null; ui.box = null;
        frame.classList.remove('drawing');
        drawBoxes(); renderBelow();
      } catch (ex) { toast(ex.message); }
    }
    function findingCard(f) {
      const stKey = { pending: 'st_pending', confirmed: 'st_confirmed', rejected: 'st_rejected' }[f.status];
      const editing = ui.mode === 'adjust' && ui.fid === f.id;
      const hz = hazardById(f.hazard_id);
      return h('article', { class: `hz bl-${f.severity} st-${f.status}`, 'data-finding': f.id,
        'data-status': f.status, 'data-hazard': f.hazard_id, 'data-source': f.source },
      h('div', { class: 'row' }, sevBadge(f.severity), h('h3', { class: 'grow' }, hzName(f)),
        h('span', { class: `st ${f.status === 'confirmed' ? 'st-closed' : f.status === 'rejected' ? '' : 'st-open'}` },
          t(stKey))),
      h('div', { class: 'row conf' },
        f.source === 'inspector' ? t('by_inspector') : `${t('conf')} ${pct(f.confidence)}`,
        f.suspected ? h('span', { class: 'pill' }, t('suspected')) : null,
        f.detector_class ? h('span', { class: 'muted small' }, f.detector_class) : null),
      h('dl', {}, h('dt', {}, t('basis')), h('dd', {}, f.legal_basis || hz?.legal_basis || ''),
        h('dt', {}, t('advice')), h('dd', {}, f.advice_zh || hz?.advice_zh || ''),
        f.note ? [h('dt', {}, t('note')), h('dd', {}, f.note)] : null),
      editing ? h('div', { class: 'btns' },
        h('button', { class: 'btn primary', type: 'button', onclick: () => decide(f, 'confirm', ui.box) },
          t('save_confirm')),
        h('button', { class: 'btn ghost', type: 'button', onclick: () => {
          ui.mode = 'view'; ui.fid = null; ui.box = null; frame.classList.remove('drawing'); drawBoxes(); renderBelow();
        } }, t('cancel')))
        : h('div', { class: 'btns' },
          h('button', { class: `btn ok${f.status === 'confirmed' ? ' on' : ''}`, type: 'button', 'data-act': 'confirm',
            'aria-pressed': String(f.status === 'confirmed'), onclick: () => decide(f, 'confirm') }, t('confirm')),
          h('button', { class: `btn bad${f.status === 'rejected' ? ' on' : ''}`, type: 'button', 'data-act': 'reject',
            'aria-pressed': String(f.status === 'rejected'), onclick: () => decide(f, 'reject') }, t('reject')),
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
            e.target.disabled = true;
            try {
              const f = await api('POST', `/app/api/photos/${photo.id}/findings`,
                { hazard_id: sel.value, box: ui.box, note: note.value.trim() || null });
              (photo.findings ||= []).push(f);
              ui.mode = 'view'; ui.box = null; frame.classList.remove('drawing');
              drawBoxes(); renderBelow(); toast(t('saved'));
            } catch (ex) { err.textContent = ex.message; e.target.disabled = false; }
          } }, t('save')),
          h('button', { class: 'btn ghost', type: 'button', onclick: () => {
            ui.mode = 'view'; ui.box = null; frame.classList.remove('drawing'); drawBoxes(); renderBelow();
          } }, t('cancel'))));
    }
    function renderBelow() {
      const fs = photo.findings || [];
      const live = fs.filter((f) => f.status !== 'rejected').length;
      below.replaceChildren(
        ...(photo.warnings || []).map((w) => h('div', { class: 'warn', role: 'note' }, icon('warn'),
          h('div', {}, h('strong', {}, `${t('retake')}：`), en() ? w.message_en : w.message_zh))),
        h('div', { class: 'row spread', style: { marginTop: '10px' } },
          h('strong', {}, live ? t('found', live) : t('found0')),
          h('span', { class: 'muted small' }, `${t('model')} ${photo.model?.version || photo.model?.id || t('model_na')}`)),
        ui.mode === 'add' ? addForm() : h('div', { class: 'btns' },
          h('button', { class: 'btn ghost', type: 'button', 'data-act': 'add-missed', onclick: () => {
            ui.mode = 'add'; ui.fid = null; ui.box = null; frame.classList.add('drawing'); drawBoxes(); renderBelow();
            frame.scrollIntoView({ block: 'nearest' });
          } }, icon('plus'), t('add_missed'))),
        ...fs.map(findingCard));
    }
    drawBoxes();
    renderBelow();
    card.append(frame, below);
    return card;
  }

  /* ---------------------------------------------------------------- view: ledger (隐患台账) */
  const STATUSES = ['open', 'in_progress', 'pending_review', 'closed'];
  async function viewLedger() {
    const f = { status: '', overdue: false, unit: '', hazard: '', severity: '', from: '', to: '' };
    const listEl = h('div', {});
    const total = h('p', { class: 'muted small' });
    const more = h('button', { class: 'btn ghost block', type: 'button', hidden: true, onclick: () => load(false) },
      t('more'));
    const exp = h('div', { class: 'row' });
    let offset = 0;
    const qs = () => {
      const p = new URLSearchParams();
      for (const k of ['unit', 'hazard', 'severity', 'status', 'from', 'to']) if (f[k]) p.set(k, f[k]);
      if (f.overdue) p.set('overdue', 'true');
      return p;
    };
    async function load(fresh = true) {
      if (fresh) { offset = 0; listEl.replaceChildren(); }
      const p = qs();
      p.set('limit', '20'); p.set('offset', String(offset));
      const r = await api('GET', `/app/api/ledger?${p}`);
      offset += r.items.length;
      total.textContent = t('n_items', r.total);
      if (!r.total) listEl.replaceChildren(h('p', { class: 'empty' }, t('no_items')));
      for (const it of r.items) listEl.append(ledgerCard(it));
      more.hidden = offset >= r.total;
      const q = qs().toString();
      exp.replaceChildren(h('span', { class: 'muted small' }, `${t('export')}:`),
        h('a', { class: 'btn ghost', href: `/app/api/ledger/export.csv${q ? `?${q}` : ''}`, download: 'ledger.csv' }, 'CSV'),
        h('a', { class: 'btn ghost', href: `/app/api/ledger/export.xlsx${q ? `?${q}` : ''}`, download: 'ledger.xlsx' },
          'Excel'));
    }
    const chip = (label, on, set) => h('button', { class: 'chip', type: 'button', 'aria-pressed': String(on),
      onclick: async (e) => {
        set();
        for (const c of chips.children) c.setAttribute('aria-pressed', 'false');
        e.currentTarget.setAttribute('aria-pressed', 'true');
        await load().catch((ex) => toast(ex.message));
      } }, label);
    const chips = h('div', { class: 'chips', role: 'group', 'aria-label': en() ? 'Status' : '状态' },
      chip(t('all'), true, () => { f.status = ''; f.overdue = false; }),
      STATUSES.map((sv) => chip(t(`s_${sv}`), false, () => { f.status = sv; f.overdue = false; })),
      chip(t('overdue'), false, () => { f.status = ''; f.overdue = true; }));
    const fld = (id, label, input) => h('div', { class: id === 'unit' || id === 'hazard' ? 'full' : '' },
      h('label', { for: `f-${id}` }, label), input);
    const filters = h('details', { class: 'card' }, h('summary', {}, t('filter')),
      h('form', { class: 'filters', onsubmit: async (e) => {
        e.preventDefault();
        const el = e.target.elements;
        for (const k of ['unit', 'hazard', 'severity', 'from', 'to']) f[k] = el[k].value.trim();
        await load().catch((ex) => toast(ex.message));
      } },
      fld('unit', t('unit'), h('input', { id: 'f-unit', name: 'unit', type: 'search' })),
      fld('hazard', t('hazard'), h('select', { id: 'f-hazard', name: 'hazard' }, h('option', { value: '' }, t('all')),
        st.tax.hazards.map((x) => h('option', { value: x.id }, hzName(x))))),
      fld('severity', t('severity'), h('select', { id: 'f-severity', name: 'severity' },
        h('option', { value: '' }, t('all')), (st.tax.severities || []).map((x) => h('option', { value: x.id },
          sevName(x.id))))),
      h('div', {}),
      fld('from', t('from'), h('input', { id: 'f-from', name: 'from', type: 'date' })),
      fld('to', t('to'), h('input', { id: 'f-to', name: 'to', type: 'date' })),
      h('div', { class: 'full btns' }, h('button', { class: 'btn primary', type: 'submit' }, t('apply')),
        h('button', { class: 'btn ghost', type: 'reset' }, t('reset')))));
    await load();
    return h('div', {}, h('h1', {}, t('ledger')), chips, filters, total, listEl, more, exp);
  }

  let peoplePromise = null;  // the organisation's users for 指派 (the API lists them to admins only)
  const people = () => (peoplePromise ||= api('GET', '/app/api/users').then((r) => r.items).catch(() => []));
  /** 指派 / 调整期限 (supervisor): responsible person, assignee, deadline, note. */
  function assignForm(it, done, err) {
    const id = (k) => `${k}-${it.id}`;
    const who = h('select', { id: id('as'), name: 'assigned_to' }, h('option', { value: '' }, '—'));
    people().then((us) => {
      for (const u of us) who.append(h('option', { value: u.id, selected: u.id === it.assigned_to }, u.display_name || u.username));
      who.parentElement.hidden = !us.length;
    });
    const form = h('form', { onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = '';
      const el = form.elements;
      const body = { version: it.version, note: el.note.value.trim() };
      if (el.responsible.value.trim()) body.responsible_person = el.responsible.value.trim();
      if (el.deadline.value) body.deadline = el.deadline.value;
      if (who.value) body.assigned_to = who.value;
      try { done(await api('POST', `/app/api/ledger/${it.id}/assign`, body)); } catch (ex) { err.textContent = ex.message; }
    } },
    h('label', { for: id('ar') }, t('responsible')),
    h('input', { id: id('ar'), name: 'responsible', value: it.responsible_person || '', maxLength: 100 }),
    h('div', { hidden: true }, h('label', { for: id('as') }, t('assignee')), who),
    h('label', { for: id('ad') }, t('deadline')),
    h('input', { id: id('ad'), name: 'deadline', type: 'date', value: (it.deadline || '').slice(0, 10) }),
    h('label', { for: id('an') }, t('note'), ' ', h('span', { class: 'hint' }, `(${t('optional')})`)),
    h('input', { id: id('an'), name: 'note', maxLength: 2000 }),
    h('div', { class: 'btns' }, h('button', { class: 'btn', type: 'submit', 'data-act': 'assign' }, t('save'))));
    return h('details', { class: 'small assign' }, h('summary', {}, t('assign')), form);
  }
  function ledgerCard(it) {
    const card = h('article', { class: `card bl-${it.severity}${it.overdue ? ' overdue' : ''}`, 'data-ledger': it.id,
      'data-status': it.status, 'data-finding': it.finding_id, 'data-recheck': it.ai_recheck || null });
    const boss = st.user.role === 'supervisor' || st.user.role === 'admin';
    const err = h('p', { class: 'err', role: 'alert' });
    async function move(to, extra = {}) {
      err.textContent = '';
      try {
        const n = await api('POST', `/app/api/ledger/${it.id}/transition`, { to, version: it.version, ...extra });
        card.replaceWith(ledgerCard(n));
      } catch (ex) {
        err.textContent = ex.message;
        if (ex.status === 409) {  // someone else moved it: show the item as it is now
          try {
            const c = ledgerCard(await api('GET', `/app/api/ledger/${it.id}`));
            c.querySelector('.err').textContent = ex.message;
            card.replaceWith(c);
          } catch { /* keep the message */ }
        }
      }
    }
    const due = new Date(it.deadline);
    const days = Math.ceil((due - Date.now()) / 86400000);
    const dueText = it.status === 'closed' ? `${t('closed_at')} ${fmtDate(it.closed_at)}`
      : it.overdue ? t('days_over', Math.max(1, -days)) : days <= 0 ? t('due_today') : t('days_left', days);
    let actions = null;
    if (it.status === 'open') {
      const who = h('input', { id: `rp-${it.id}`, name: 'responsible', value: it.responsible_person || '',
        maxLength: 100, autocomplete: 'name' });
      actions = h('div', {}, h('label', { for: `rp-${it.id}` }, t('responsible')), who,
        h('div', { class: 'btns' }, h('button', { class: 'btn primary', type: 'button', 'data-act': 'start',
          onclick: () => move('in_progress', who.value.trim() ? { responsible_person: who.value.trim() } : {}) },
        t('begin_fix'))));
    } else if (it.status === 'in_progress') {
      actions = h('div', { class: 'btns' }, h('label', { class: 'btn primary filepick' }, icon('camera'), t('upload_fix'),
        h('input', { type: 'file', accept: 'image/*', capture: 'environment', 'data-pick': 'rectification',
          'aria-label': t('upload_fix'), onchange: async (e) => {
            const files = [...e.target.files].slice(0, 1);
            e.target.value = '';
            if (files.length) await enqueue(files, 'rect', it.id);
          } })));
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
    } else if (it.status === 'pending_review') {
      actions = h('p', { class: 'muted' }, t('wait_review'));
    }
    const q = queueCard('rect', it.id);
    const assign = boss && it.status !== 'closed' ? assignForm(it, (n) => card.replaceWith(ledgerCard(n)), err) : null;
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
        h('span', { class: it.overdue ? 'tag-bad' : 'pill' }, it.overdue ? `${t('overdue')} · ${dueText}` : dueText),
        h('span', { class: 'pill' }, `${t('deadline')} ${fmtDate(it.deadline)}`),
        it.responsible_person ? h('span', { class: 'pill' }, `${t('responsible')}: ${it.responsible_person}`) : null,
        it.ai_recheck === 'passed' ? h('span', { class: 'tag-ok' }, t('ai_passed')) : null,
        it.status === 'pending_review' && !it.ai_recheck ? h('span', { class: 'pill' }, t('ai_none')) : null),
      it.ai_recheck === 'failed' ? h('div', { class: 'recheck-failed', role: 'note' },
        icon('warn'), h('span', {}, t('ai_failed_long'))) : null,
      it.rectification_photo_url ? h('img', { class: 'thumb', src: it.rectification_photo_url, alt: t('fix_photo'),
        loading: 'lazy' }) : null,
      q, actions, assign, err,
      h('div', { class: 'card-foot small' },
        h('a', { href: `#/inspection/${it.inspection_id}` }, t('view_insp')),
        (it.history || []).length ? h('details', { class: 'small' }, h('summary', {}, t('history')),
          h('ol', { class: 'hist' }, it.history.map((x) => h('li', {},
            `${fmtTime(x.at)} ${x.by || ''} ${x.from ? t(`s_${x.from}`) : ''} → ${t(`s_${x.to}`)}${x.note ? `：${x.note}` : ''}`))))
          : null));
    return card;
  }

  /* ---------------------------------------------------------------- view: statistics (inline SVG) */
  const SEV_COLOR = { critical: '#b3261e', high: '#c2410c', medium: '#8f5f00', low: '#1864ab' };
  const trunc = (x, n) => (x.length > n ? `${x.slice(0, n - 1)}…` : x);
  /** Rows [{label, value, raw}] from either a list of objects or a {key: count} map. */
  function rows(x, label) {
    if (!x) return [];
    const val = (o) => (typeof o === 'number' ? o : o.count ?? o.total ?? o.value ?? o.n ?? 0);
    if (!Array.isArray(x)) return Object.entries(x).map(([k, v]) => ({ label: label({ key: k, ...(typeof v === 'object' ? v : {}) }), value: val(v), raw: v }));
    return x.map((o) => ({ label: label(o), value: val(o), raw: o }));
  }
  function hbars(data, { color = '#0b5cad', colorOf = null, fmt = String, max = null, title = '' } = {}) {
    const W = 340;
    const RH = 40;
    const top = Math.max(max ?? 0, ...data.map((d) => d.value), 1e-9);
    const svg = s('svg', { viewBox: `0 0 ${W} ${data.length * RH + 4}`, role: 'img',
      'aria-label': `${title}: ${data.map((d) => `${d.label} ${fmt(d.value, d)}`).join('; ')}` });
    data.forEach((d, i) => {
      const y = i * RH;
      const bw = Math.max(2, (d.value / top) * (W - 64));
      svg.append(s('text', { x: 0, y: y + 14 }, trunc(d.label, 26)),
        s('rect', { x: 0, y: y + 20, width: W - 64, height: 14, rx: 3, fill: '#eef1f5' }),
        s('rect', { x: 0, y: y + 20, width: bw, height: 14, rx: 3, fill: colorOf ? colorOf(d) : color }),
        s('text', { x: bw + 6, y: y + 32, class: 'val' }, fmt(d.value, d)));
    });
    return svg;
  }
  function columns(data, title) {
    const W = 340; const H = 170; const B = 24; const L = 26;
    const top = Math.max(1, ...data.map((d) => d.value));
    const bw = (W - L) / Math.max(1, data.length);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': `${title}: ${data.map((d) => `${d.label} ${d.value}`).join('; ')}` });
    for (const g of [0, 0.5, 1]) {
      const y = H - B - g * (H - B - 12);
      svg.append(s('line', { x1: L, x2: W, y1: y, y2: y, stroke: '#d8dee6' }),
        s('text', { x: 0, y: y + 4 }, String(Math.round(top * g))));
    }
    const every = Math.ceil(data.length / 6);
    data.forEach((d, i) => {
      const hh = (d.value / top) * (H - B - 12);
      const x = L + i * bw;
      const cw = Math.min(bw * 0.7, 36);
      svg.append(s('rect', { x: x + (bw - cw) / 2, y: H - B - hh, width: cw, height: hh, rx: 2, fill: '#0b5cad' },
        s('title', {}, `${d.label}: ${d.value}`)));
      if (i % every === 0) svg.append(s('text', { x: x + bw / 2, y: H - 6, 'text-anchor': 'middle' }, d.label));
    });
    return svg;
  }
  function donut(data, title, centre) {
    const total = data.reduce((a, d) => a + d.value, 0) || 1;
    const svg = s('svg', { viewBox: '0 0 340 140', role: 'img',
      'aria-label': `${title}: ${data.map((d) => `${d.label} ${d.value}`).join('; ')}` });
    let off = 25;  // start at 12 o'clock (the circle's circumference is 100)
    const g = s('g', { transform: 'translate(70 70) scale(3.6)' },
      s('circle', { r: 15.915, fill: 'none', stroke: '#eef1f5', 'stroke-width': 6 }));
    for (const d of data) {
      const part = (d.value / total) * 100;
      if (part > 0) {
        g.append(s('circle', { r: 15.915, fill: 'none', stroke: d.color, 'stroke-width': 6,
          'stroke-dasharray': `${part} ${100 - part}`, 'stroke-dashoffset': off }));
      }
      off -= part;
    }
    svg.append(g, s('text', { x: 70, y: 76, 'text-anchor': 'middle', class: 'val', 'font-size': 18 }, centre));
    data.forEach((d, i) => {
      svg.append(s('rect', { x: 160, y: 18 + i * 28, width: 14, height: 14, rx: 3, fill: d.color }),
        s('text', { x: 182, y: 30 + i * 28 }, `${d.label}  ${d.value}`));
    });
    return svg;
  }
  const chartCard = (title, body, sub) => h('section', { class: 'card chart' }, h('h2', {}, title),
    sub ? h('p', { class: 'muted small' }, sub) : null, body);
  const noData = () => h('p', { class: 'empty' }, t('no_data'));

  async function viewStats() {
    const wrap = h('div', {});
    const body = h('div', {});
    const range = { from: '', to: '' };
    async function load() {
      const p = new URLSearchParams();
      if (range.from) p.set('from', range.from);
      if (range.to) p.set('to', range.to);
      const d = await api('GET', `/app/api/stats${p.size ? `?${p}` : ''}`);
      body.replaceChildren(...statsBody(d));
    }
    const summary = h('summary', {}, `${t('period')}: ${t('all')}`);
    const form = h('details', { class: 'card' }, summary, h('form', { class: 'filters', onsubmit: async (e) => {
      e.preventDefault();
      range.from = e.target.elements.from.value; range.to = e.target.elements.to.value;
      summary.textContent = `${t('period')}: ${range.from || range.to ? `${range.from || '…'} – ${range.to || '…'}` : t('all')}`;
      e.target.parentElement.open = false;
      await load().catch((ex) => toast(ex.message));
    } },
    h('div', {}, h('label', { for: 's-from' }, t('from')), h('input', { id: 's-from', name: 'from', type: 'date' })),
    h('div', {}, h('label', { for: 's-to' }, t('to')), h('input', { id: 's-to', name: 'to', type: 'date' })),
    h('div', { class: 'full btns' }, h('button', { class: 'btn primary', type: 'submit' }, t('apply')))));
    await load();
    wrap.append(h('h1', {}, t('stats')), form, body);
    return wrap;
  }
  function statsBody(d) {
    const sev = rows(d.by_severity, (o) => sevName(o.severity || o.id || o.key));
    const sevIds = rows(d.by_severity, (o) => o.severity || o.id || o.key);
    const total = sev.reduce((a, x) => a + x.value, 0);
    const rc = d.rectification || {};
    const kpi = (label, value, cls, key) => h('div', { class: 'card', 'data-kpi': key },
      h('div', { class: `big ${cls || ''}` }, value), h('div', { class: 'muted small' }, label));
    const out = [h('div', { class: 'kgrid' },
      kpi(t('total_hz'), total, '', 'total'), kpi(t('rate'), pct(rc.rate), '', 'rate'),
      kpi(t('overdue_n'), rc.overdue ?? 0, rc.overdue ? 'err' : '', 'overdue'), kpi(t('closed_n'), rc.closed ?? 0, '', 'closed'))];
    const weeks = rows(d.by_week, (o) => {
      const w = String(o.week ?? o.week_start ?? o.start ?? o.key ?? '');
      return /^\d{4}-\d{2}-\d{2}/.test(w) ? w.slice(5, 10) : w.replace(/^\d{4}-?/, '');
    });
    out.push(chartCard(t('by_week'), weeks.length ? columns(weeks, t('by_week')) : noData()));
    const order = ['critical', 'high', 'medium', 'low'];
    const sevData = sevIds.map((x, i) => ({ label: sev[i].label, value: x.value, color: SEV_COLOR[x.label] || '#888',
      k: order.indexOf(x.label) })).sort((a, b) => a.k - b.k);
    out.push(chartCard(t('by_sev'), total ? donut(sevData, t('by_sev'), String(total)) : noData()));
    const closed = rc.closed ?? 0; const inTime = rc.closed_in_time ?? 0; const open = rc.open ?? 0; const over = rc.overdue ?? 0;
    out.push(chartCard(t('rate'), (closed + open) ? donut([
      { label: t('in_time'), value: inTime, color: '#1b7a3a' },
      { label: `${t('closed_n')} (${en() ? 'late' : '超期'})`, value: Math.max(0, closed - inTime), color: '#74b816' },
      { label: t('open_n'), value: Math.max(0, open - over), color: '#adb5bd' },
      { label: t('overdue_n'), value: over, color: '#b3261e' }], t('rate'), pct(rc.rate)) : noData()));
    const bar = (key, title, label) => {
      const r = rows(d[key], label).sort((a, b) => b.value - a.value).slice(0, 12);
      out.push(chartCard(title, r.length ? hbars(r, { title }) : noData()));
    };
    bar('by_hazard', t('by_type'), (o) => {
      const hz = hazardById(o.hazard_id || o.id || o.key);
      return hz ? hzName(hz) : hzName(o) || String(o.key ?? '');
    });
    bar('by_unit', t('by_unit'), (o) => String(o.unit?.name ?? o.unit ?? o.name ?? o.key ?? ''));
    bar('by_inspector', t('by_insp'), (o) => String(o.inspector?.display_name ?? o.display_name ?? o.inspector ?? o.username ?? o.key ?? ''));
    const mf = (d.model_field || []).map((m) => {
      const hz = hazardById(m.hazard_id);
      const n = (m.confirmed || 0) + (m.rejected || 0);
      return { label: `${hz ? hzName(hz) : m.hazard_id || ''}${m.detector_class ? ` · ${m.detector_class}` : ''}`,
        value: n ? (m.precision ?? m.confirmed / n) : 0, raw: m, n };
    });
    const field = h('div', {});
    if (mf.length) {
      field.append(hbars(mf, { max: 1, title: t('field'), fmt: (v, x) => (x.n ? pct(v) : '—'),
        colorOf: (x) => (!x.n ? '#adb5bd' : x.value >= 0.8 ? '#1b7a3a' : x.value >= 0.5 ? '#b27700' : '#b3261e') }));
      field.append(h('ul', { class: 'hist' }, mf.map((x) => h('li', {}, `${x.label}: ${t('confirmed')} ${x.raw.confirmed || 0} · ${
        t('rejected')} ${x.raw.rejected || 0} · ${t('added')} ${x.raw.added || 0}`))));
    } else field.append(noData());
    out.push(chartCard(t('field'), field, t('field_sub')));
    return out;
  }

  /* ---------------------------------------------------------------- view: me */
  async function viewMe() {
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

  /* ---------------------------------------------------------------- start */
  function setLang(l) {
    st.lang = l;
    LS.setItem('hazardscan.lang', l);
    applyLang();
    route();
  }
  $('#lang').addEventListener('click', () => setLang(en() ? 'zh' : 'en'));
  window.addEventListener('hashchange', route);
  applyLang();
  route();
  setInterval(() => { if (queued.some((r) => !r.error) && !pumping) pump(); }, 30000);
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => { /* http: no shell cache */ });
  window.hazardscan = { pump, queue: () => queued, downscale };  // for tests and the benchmark
})();
