// Small SVG charts drawn from the server's aggregation (GET /webhooks/{uid}/stats/series): no
// chart library, colours from style.css classes (the CSP allows no inline style).
import { h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

function clock(iso) {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

// A chart of buckets (the series' buckets) with series [{name, cls, kind: 'bar' | 'line',
// value: bucket => number | null, stack: true}], y labelled by fmt.
export function chart(title, buckets, series, fmt, fixedMax) {
  const W = 640, H = 180, L = 52, R = 8, T = 10, B = 24;
  const pw = W - L - R, ph = H - T - B, n = buckets.length || 1;
  let max = fixedMax || 0;
  if (!fixedMax) {
    for (let i = 0; i < buckets.length; i++) {
      let stacked = 0;
      for (const sr of series) {
        const v = sr.value(buckets[i]);
        if (v === null || v === undefined) continue;
        if (sr.stack) stacked += v;
        else max = Math.max(max, v);
      }
      max = Math.max(max, stacked);
    }
    max = max > 0 ? max * 1.1 : 1;
  }
  const x = (i) => L + (i * pw) / n, y = (v) => T + ph - (v / max) * ph;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': title });
  for (const f of [0, 0.5, 1]) {
    svg.appendChild(s('line', { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: 'grid' }));
    svg.appendChild(s('text', { x: L - 6, y: y(max * f) + 4, class: 'axis', 'text-anchor': 'end' },
      fmt(max * f)));
  }
  for (const i of [0, Math.floor(buckets.length / 2), buckets.length - 1]) {
    if (!buckets[i]) continue;
    svg.appendChild(s('text', { x: x(i) + pw / n / 2, y: H - 6, class: 'axis',
      'text-anchor': 'middle' }, clock(buckets[i].start)));
  }
  const base = new Array(buckets.length).fill(0);
  for (const sr of series) {
    if (sr.kind === 'bar') {
      buckets.forEach((b, i) => {
        const v = sr.value(b) || 0;
        if (!v) return;
        const top = y(base[i] + v), bottom = y(base[i]);
        const bar = s('rect', { x: x(i) + 0.5, width: Math.max(pw / n - 1, 0.5), y: top,
          height: Math.max(bottom - top, 0.5), class: sr.cls });
        bar.appendChild(s('title', null, `${clock(b.start)} ${sr.name}: ${fmt(v)}`));
        svg.appendChild(bar);
        if (sr.stack) base[i] += v;
      });
    } else {
      // A line broken where there is no value (a bucket without attempts).
      let d = '';
      let pen = false;
      buckets.forEach((b, i) => {
        const v = sr.value(b);
        if (v === null || v === undefined) {
          pen = false;
          return;
        }
        d += `${pen ? 'L' : 'M'}${(x(i) + pw / n / 2).toFixed(1)},${y(v).toFixed(1)} `;
        pen = true;
        const dot = s('circle', { cx: x(i) + pw / n / 2, cy: y(v), r: 2, class: sr.cls });
        dot.appendChild(s('title', null, `${clock(b.start)} ${sr.name}: ${fmt(v)}`));
        svg.appendChild(dot);
      });
      if (d) svg.appendChild(s('path', { d, class: sr.cls + ' line' }));
    }
  }
  const legend = h('div.legend', null,
    series.map((sr) => h('span.key', null, h('span.swatch.' + sr.cls), sr.name)));
  return h('figure.chart-box', null, h('figcaption', null, title), svg, legend);
}

// A tiny bar per bucket, its height the attempts and its colour the success rate.
export function sparkline(buckets) {
  const W = 96, H = 20, n = buckets.length || 1;
  const max = Math.max(1, ...buckets.map((b) => b.attempts));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img',
    'aria-label': 'attempts over the last 24 hours' });
  buckets.forEach((b, i) => {
    if (!b.attempts) return;
    const hh = Math.max(2, (b.attempts / max) * H);
    const cls = b.successRate === 1 ? 'ok' : b.successRate >= 0.9 ? 'warn' : 'bad';
    svg.appendChild(s('rect', { x: (i * W) / n, width: W / n - 1, y: H - hh, height: hh,
      class: 'fill-' + cls }));
  });
  return svg;
}
