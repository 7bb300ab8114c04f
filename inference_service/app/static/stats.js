/* View: statistics from /app/api/stats. */
import { columns, donut, hbars, rows, SEV_COLOR } from './charts.js';
import { api, hazardById, hzName, sevName } from './api.js';
import { h, pct, toast } from './dom.js';
import { en, t } from './i18n.js';

export const chartCard = (title, body, sub) => h('section', { class: 'card chart' }, h('h2', {}, title),
  sub ? h('p', { class: 'muted small' }, sub) : null, body);
export const noData = () => h('p', { class: 'empty' }, t('no_data'));

export async function viewStats() {
  const wrap = h('div', {});
  const body = h('div', {});
  const range = { from: '', to: '' };
  async function load() {
    const p = new URLSearchParams();
    if (range.from) p.set('from', range.from);
    if (range.to) p.set('to', range.to);
    const [d, cams] = await Promise.all([api('GET', `/app/api/stats${p.size ? `?${p}` : ''}`),
      api('GET', `/app/api/events/by-camera${p.size ? `?${p}` : ''}`).catch(() => [])]);
    body.replaceChildren(...statsBody(d), ...(cams.length ? [cameraCard(cams, p)] : []));
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
/* The organisation's camera events per camera and hazard: how many, how many still waiting, and how many were
 * 误报 among those looked at (shown only where cameras raised events). */
function cameraCard(cams, params) {
  const label = (r) => `${r.camera_id} · ${en() ? r.name_en : r.name_zh}`;
  const bars = hbars(cams.slice(0, 12).map((r) => ({ label: label(r), value: r.events })), { title: t('cam_stats') });
  const lines = h('ul', { class: 'hist' }, cams.map((r) => h('li', { 'data-camera': r.camera_id },
    t('cam_line', label(r), r.events, r.waiting, r.inspections, r.false_alarm,
      r.false_alarm_share == null ? '—' : pct(r.false_alarm_share)))));
  const link = (fmt) => {
    const q = new URLSearchParams(params); q.set('format', fmt);
    return h('a', { class: 'btn', href: `/app/api/events/by-camera?${q}`, download: `hazardscan-cameras.${fmt}` },
      fmt === 'xlsx' ? 'Excel' : 'CSV');
  };
  return chartCard(t('cam_stats'), h('div', {}, bars, lines, h('div', { class: 'btns' }, t('export'), link('xlsx'),
    link('csv'))), t('cam_stats_sub'));
}
export function statsBody(d) {
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
    const m = w.match(/^(\d{4})-W(\d+)/);  // an ISO week: said as the date of its Monday, 12/01 周
    if (!m) return /^\d{4}-\d{2}-\d{2}/.test(w) ? w.slice(5, 10) : w.replace(/^\d{4}-?/, '');
    const d = new Date(Date.UTC(+m[1], 0, 4));
    d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7) + (m[2] - 1) * 7);
    return t('wk_of', d.toISOString().slice(5, 10).replace('-', '/'));
  });
  out.push(chartCard(t('by_week'), weeks.length ? columns(weeks, t('by_week')) : noData()));
  const order = ['critical', 'high', 'medium', 'low'];
  const sevData = sevIds.map((x, i) => ({ label: sev[i].label, value: x.value, color: SEV_COLOR[x.label] || '#888',
    k: order.indexOf(x.label) })).sort((a, b) => a.k - b.k);
  out.push(chartCard(t('by_sev'), total ? donut(sevData, t('by_sev'), String(total)) : noData()));
  const closed = rc.closed ?? 0; const inTime = rc.closed_in_time ?? 0; const open = rc.open ?? 0; const over = rc.overdue ?? 0;
  out.push(chartCard(t('rate'), (closed + open) ? donut([
    { label: t('in_time'), value: inTime, color: '#1b7a3a' },
    { label: `${t('closed_n')} (${t('late')})`, value: Math.max(0, closed - inTime), color: '#74b816' },
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
  const rp = d.reports || {};  // 群众举报 sent in the period, by what became of them; shown once there are any
  const rpn = (rp.new || 0) + (rp.verified || 0) + (rp.rejected || 0);
  if (rpn) {
    out.push(chartCard(t('rp_title'), donut([{ label: t('rp_f_new'), value: rp.new || 0, color: '#b27700' },
      { label: t('rp_f_ver'), value: rp.verified || 0, color: '#1b7a3a' },
      { label: t('rp_rejected'), value: rp.rejected || 0, color: '#adb5bd' }], t('rp_title'), String(rpn))));
  }
  const fieldRows = d.model_field || [];
  const mf = fieldRows.map((m) => {
    const hz = hazardById(m.hazard_id);
    const n = (m.confirmed || 0) + (m.rejected || 0);
    // the model's class (English) only in English, or where one hazard comes from two classes
    const twice = fieldRows.filter((x) => x.hazard_id === m.hazard_id).length > 1;
    const cls = m.detector_class && (en() || twice) ? ` · ${m.detector_class}` : '';
    return { label: `${hz ? hzName(hz) : m.hazard_id || ''}${cls}`,
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
