// Small SVG charts drawn here (no library): one chart is a few dozen elements, redrawn on each refresh.
import { s, h } from './dom.js';

const W = 600, H = 190, L = 44, R = 10, T = 24, B = 26;

// chart draws series over 1-minute buckets. series: [{key, label, kind: 'bar'|'line', cls}], unit for
// the y axis label. Returns a <figure> with a text summary for screen readers.
export function chart(title, buckets, series, unit, summary) {
  const n = Math.max(buckets.length, 1);
  let max = 0;
  for (const b of buckets) for (const se of series) max = Math.max(max, Number(b[se.key]) || 0);
  max = niceMax(max);
  const x0 = L, x1 = W - R, y0 = H - B, y1 = T;
  const bw = (x1 - x0) / n;
  const y = (v) => y0 - (v / max) * (y0 - y1);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `${title}: ${summary}` });
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(s('line', { x1: x0, x2: x1, y1: y(v), y2: y(v), class: 'gridline' }));
    svg.append(s('text', { x: x0 - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, fmtTick(v)));
  }
  svg.append(s('text', { x: 4, y: 11, class: 'axis' }, unit));
  const bars = series.filter((x) => x.kind === 'bar');
  buckets.forEach((b, i) => {
    bars.forEach((se, j) => {
      const v = Number(b[se.key]) || 0;
      if (!v) return;
      const w = Math.max(1, (bw - 1) / bars.length);
      svg.append(s('rect', { x: x0 + i * bw + j * w, y: y(v), width: w, height: y0 - y(v), class: se.cls },
        s('title', null, `${label(b.t)}: ${v} ${se.label}`)));
    });
  });
  for (const se of series.filter((x) => x.kind === 'line')) {
    const pts = [];
    buckets.forEach((b, i) => {
      const v = b[se.key];
      if (v === null || v === undefined || Number(v) === 0) return;
      pts.push(`${(x0 + (i + 0.5) * bw).toFixed(1)},${y(Number(v)).toFixed(1)}`);
    });
    if (pts.length) svg.append(s('polyline', { points: pts.join(' '), class: se.cls }));
    if (pts.length === 1) {
      const [px, py] = pts[0].split(',');
      svg.append(s('circle', { cx: px, cy: py, r: 3, class: se.cls }));
    }
  }
  if (buckets.length) {
    const last = buckets.length - 1;
    for (const [i, anchor] of [[0, 'start'], [Math.floor(last / 2), 'middle'], [last, 'end']]) {
      const x = anchor === 'start' ? x0 : anchor === 'end' ? x1 : x0 + (i + 0.5) * bw;
      svg.append(s('text', { x, y: H - 8, 'text-anchor': anchor, class: 'axis' }, label(buckets[i].t)));
    }
  }
  svg.append(s('line', { x1: x0, x2: x1, y1: y0, y2: y0, class: 'baseline' }));
  return h('figure', { class: 'card chartbox' },
    h('figcaption', null, title, ' ', h('span', { class: 'legend' }, series.map((se) => h('span', { class: `key ${se.cls}` }, se.label)))),
    svg,
    h('p', { class: 'muted small' }, summary));
}

function niceMax(m) {
  if (m <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(m));
  // four grid steps: maxima whose quarter is a round number
  for (const k of [1, 2, 4, 8, 10]) if (k * p >= m) return k * p;
  return 10 * p;
}

function fmtTick(v) { return v >= 100 ? Math.round(v).toString() : Number(v.toFixed(1)).toString(); }

function label(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
