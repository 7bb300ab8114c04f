/* Charts as inline SVG (no library): horizontal bars, weekly columns, donuts; each with a text alternative. */
import { s } from './dom.js';

export const SEV_COLOR = { critical: '#b3261e', high: '#c2410c', medium: '#8f5f00', low: '#1864ab' };
export const trunc = (x, n) => (x.length > n ? `${x.slice(0, n - 1)}…` : x);
/** Rows [{label, value, raw}] from either a list of objects or a {key: count} map. */
export function rows(x, label) {
  if (!x) return [];
  const val = (o) => (typeof o === 'number' ? o : o.count ?? o.total ?? o.value ?? o.n ?? 0);
  if (!Array.isArray(x)) return Object.entries(x).map(([k, v]) => ({ label: label({ key: k, ...(typeof v === 'object' ? v : {}) }), value: val(v), raw: v }));
  return x.map((o) => ({ label: label(o), value: val(o), raw: o }));
}
export function hbars(data, { color = '#0b5cad', colorOf = null, fmt = String, max = null, title = '' } = {}) {
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
export function columns(data, title) {
  const W = 340; const H = 170; const B = 24; const L = 26;
  const max = Math.max(1, ...data.map((d) => d.value));
  const step = Math.ceil(max / 3);  // whole numbers, evenly spaced: 0 1 2 3, 0 2 4, 0 4 8 12
  const top = step * Math.ceil(max / step);
  const bw = (W - L) / Math.max(1, data.length);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `${title}: ${data.map((d) => `${d.label} ${d.value}`).join('; ')}` });
  for (let v = 0; v <= top; v += step) {
    const y = H - B - (v / top) * (H - B - 12);
    svg.append(s('line', { x1: L, x2: W, y1: y, y2: y, stroke: '#d8dee6' }), s('text', { x: 0, y: y + 4 }, String(v)));
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
export function donut(data, title, centre) {
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
