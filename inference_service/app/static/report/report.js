/* 隐患随手拍: the public page behind a report link (/app/report/#<token>), for anyone, without an account. A photo
 * of the hazard, where it is, what happened and, if they wish, a phone number go to the organisation that
 * published the link; the model's first guess and a receipt come back, and the receipt tells later what the
 * organisation found. The token stays in the address's fragment, which no server's access log records. Chinese
 * only: the page is for the city's public. */
import { $, downscale, h, toast, uuid } from '../dom.js';

const SEV = { critical: '重大', high: '较大', medium: '一般', low: '轻微' };
const STATUS = { new: '待核查', verified: '查证属实', rejected: '经核查不属实' };
const PENDING = 'hazardscan-report-pending';  // the idempotency key of a report not yet answered (a retry re-uses it)
const token = decodeURIComponent(location.hash.slice(1));

async function call(method, path, body) {
  let r;
  try {
    r = await fetch(path, { method, body, headers: { Accept: 'application/json', 'Accept-Language': 'zh-CN' } });
  } catch {
    throw new Error('网络连接失败，请检查网络后重试（填写的内容和照片仍在本页）');
  }
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const e = new Error(data?.error?.message || `服务器错误（${r.status}），请稍后重试`);
    e.status = r.status;
    throw e;
  }
  return data;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString('zh-CN', { hour12: false }) : '');

/** The receipt in groups of four, as it is read out on the phone. */
const grouped = (receipt) => receipt.replace(/(.{4})(?=.)/g, '$1 ');

function guessList(hazards) {
  if (!hazards.length) return h('p', { class: 'muted', 'data-guess': 'none' }, 'AI 未从照片中识别出隐患，工作人员仍会人工核查。');
  return h('ul', { class: 'rp-guess', 'data-guess': '' }, ...hazards.map((x) => h('li', {},
    h('span', { class: `sev sev-${x.severity}` }, SEV[x.severity] || x.severity), h('b', {}, x.name_zh),
    x.unconfirmed ? h('span', { class: 'pill doubt' }, '照片质量存疑') : null)));
}

/** 查询处理进度: the status of a receipt. */
function statusCard(prefill = '') {
  const input = h('input', { id: 'rc', name: 'rc', autocomplete: 'off', autocapitalize: 'characters', maxLength: 20,
    value: prefill, placeholder: '12 位回执号', spellcheck: false });
  const out = h('div', { role: 'status', 'aria-live': 'polite' });
  const form = h('form', { noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const rc = input.value.replace(/\s+/g, '').toUpperCase();
    if (!rc) { out.replaceChildren(h('p', { class: 'err' }, '请输入回执号')); input.focus(); return; }
    try {
      const s = await call('GET', `/app/api/report-receipt/${encodeURIComponent(rc)}`);
      out.replaceChildren(h('p', {}, h('span', { class: `rp-status ${s.status}`, 'data-status': s.status },
        STATUS[s.status] || s.status)),
      h('p', { class: 'muted' }, `${s.org_name} · ${s.place} · 提交于 ${when(s.created_at)}`),
      s.decided_at ? h('p', { class: 'muted' }, `核查于 ${when(s.decided_at)}`) : null,
      s.note ? h('p', { 'data-note': '' }, `说明：${s.note}`) : null,
      s.status === 'verified' ? h('p', {}, '感谢您的举报。按规定可获奖励的，工作人员会与您联系，请保留回执号。') : null);
    } catch (ex) {
      out.replaceChildren(h('p', { class: 'err', role: 'alert' }, ex.status === 404 ? '没有找到该回执号，请核对后重试' : ex.message));
    }
  } }, h('label', { for: 'rc' }, '回执号'), input,
  h('button', { class: 'btn block', type: 'submit' }, '查询'));
  return h('section', { class: 'card', 'data-lookup': '' }, h('h2', {}, '查询处理进度'), form, out);
}

function receiptCard(r, again) {
  return h('section', { class: 'card', 'data-receipt': r.receipt },
    h('h2', {}, '举报已提交'),
    h('p', {}, '您的回执号：'), h('div', { class: 'rp-receipt' }, grouped(r.receipt)),
    h('p', { class: 'muted' }, '请截图或记下回执号，凭它查询处理结果；查证属实的按规定给予奖励。'),
    h('h3', {}, 'AI 初步识别'), guessList(r.hazards),
    r.warnings.length ? h('p', { class: 'muted' }, r.warnings.join(' ')) : null,
    h('div', { class: 'btns' }, h('button', { class: 'btn primary block', type: 'button', onclick: again }, '再报一条')));
}

function reportForm(page) {
  let photo = null;
  const preview = h('img', { class: 'rp-preview', alt: '已选照片', hidden: true });
  const picker = (label, capture) => h('label', { class: 'btn filepick' }, label,
    h('input', { type: 'file', accept: 'image/*', ...(capture ? { capture: 'environment' } : {}),
      'data-pick': capture ? 'camera' : 'gallery', 'aria-label': label, onchange: (e) => {
        const f = e.target.files[0];
        e.target.value = '';
        if (!f) return;
        photo = f;
        if (preview.src) URL.revokeObjectURL(preview.src);
        preview.src = URL.createObjectURL(f);
        preview.hidden = false;
        err.textContent = '';
      } }));
  const place = h('input', { id: 'place', name: 'place', maxLength: 200, required: true, autocomplete: 'off',
    placeholder: '单位名称、街道门牌、楼栋楼层等' });
  const desc = h('textarea', { id: 'desc', name: 'desc', maxLength: 2000, rows: 3,
    placeholder: '例如：楼道内停放电动自行车并充电' });
  const contact = h('input', { id: 'contact', name: 'contact', type: 'tel', maxLength: 50, autocomplete: 'tel',
    placeholder: '选填' });
  const err = h('p', { class: 'err', role: 'alert' });
  const send = h('button', { class: 'btn primary block', type: 'submit' }, '提交举报');
  const form = h('form', { noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    if (!photo) { err.textContent = '请先拍照或选择一张照片'; return; }
    if (!place.value.trim()) { err.textContent = '请填写隐患所在位置'; place.focus(); return; }
    err.textContent = '';
    send.disabled = true;
    send.textContent = '正在上传…';
    try {
      const small = await downscale(photo).catch(() => null);  // a photo the browser cannot read goes as it is
      const body = new FormData();
      body.append('photo', small || photo, small ? 'photo.jpg' : photo.name || 'photo');
      const key = sessionStorage.getItem(PENDING) || uuid();
      sessionStorage.setItem(PENDING, key);
      body.append('idempotency_key', key);
      body.append('place', place.value.trim());
      body.append('description', desc.value.trim());
      if (contact.value.trim()) body.append('contact', contact.value.trim());
      const r = await call('POST', `/app/api/report/${encodeURIComponent(token)}`, body);
      sessionStorage.removeItem(PENDING);
      $('#view').replaceChildren(receiptCard(r, () => {
        $('#view').replaceChildren(...screen(page));
        window.scrollTo(0, 0);
      }), statusCard(grouped(r.receipt)));
      window.scrollTo(0, 0);
    } catch (ex) {
      if (ex.status && ex.status < 500 && ex.status !== 429) sessionStorage.removeItem(PENDING);  // refused: a new try
      err.textContent = ex.message;
    } finally {
      send.disabled = false;
      send.textContent = '提交举报';
    }
  } },
  h('label', {}, '隐患照片 *'), h('div', { class: 'rp-pick' }, picker('拍照', true), picker('相册选图', false)), preview,
  h('label', { for: 'place' }, '隐患位置 *'), place,
  h('label', { for: 'desc' }, '情况说明', h('span', { class: 'hint' }, '（选填）')), desc,
  h('label', { for: 'contact' }, '联系电话', h('span', { class: 'hint' }, '（选填，仅用于核实情况和奖励）')), contact,
  err, send);
  return form;
}

function screen(page) {
  return [h('section', { class: 'card' },
    h('h1', {}, '举报安全隐患'),
    h('p', { class: 'rp-lead' }, '向 ', h('b', { 'data-org': '' }, page.org_name), ' 举报', page.link_name ? `（${page.link_name}）` : ''),
    h('p', { class: 'muted' }, '无需注册登录。拍下火灾隐患、堵塞的安全出口、楼道里的电动车、违规动火等，写明位置后提交，工作人员会到现场核查。'),
    reportForm(page)), statusCard()];
}

async function start() {
  const view = $('#view');
  if (!token) {
    view.replaceChildren(h('section', { class: 'card' }, h('h1', {}, '举报链接不完整'),
      h('p', {}, '请扫描现场公示的二维码，或完整复制举报链接后打开。')), statusCard());
    return;
  }
  try {
    view.replaceChildren(...screen(await call('GET', `/app/api/report/${encodeURIComponent(token)}`)));
  } catch (ex) {
    view.replaceChildren(h('section', { class: 'card', 'data-gone': '' },
      h('h1', {}, ex.status === 404 ? '该举报链接已停用' : '暂时无法打开'),
      h('p', {}, ex.status === 404 ? '请通过现场公示的最新二维码举报，或拨打当地安全生产举报电话 12350。' : ex.message)),
    statusCard());
  }
}

window.addEventListener('hashchange', () => location.reload());
start().catch((ex) => toast(ex.message));
