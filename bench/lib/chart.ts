/**
 * @module bench/lib/chart
 * A hand-written SVG of the HTTP points: throughput (left) and p50/p99 latency (right, log
 * scale) against concurrency, one colour per path.
 */
import { med, type Point } from './stats.ts';

const COLOURS = ['#1f77b4', '#2ca02c', '#d62728', '#9467bd', '#ff7f0e', '#8c564b'];
const W = 960;
const H = 450;
const PANEL = { top: 50, bottom: 360, width: 380 };
const LEFT_X = 80;
const RIGHT_X = 560;

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

/** The title of the HTTP chart. */
export const CHART_TITLE = 'mcp-proxy: throughput and latency against concurrency (fast upstream)';

/** Renders the chart for the points of one group. */
export function renderChart(points: readonly Point[], title: string): string {
  const paths = [...new Set(points.map((p) => p.path))];
  const levels = [...new Set(points.map((p) => p.concurrency))].sort((a, b) => a - b);
  const xAt = (origin: number, c: number) =>
    origin +
    (levels.length === 1 ? PANEL.width / 2 : (levels.indexOf(c) / (levels.length - 1)) * PANEL.width);
  const rpsMax = niceMax(Math.max(...points.map((p) => med(p, 'rps')).filter(Number.isFinite)));
  const lat = points.flatMap((p) => [med(p, 'p50'), med(p, 'p99')]).filter((v) => v > 0);
  const latMin = 10 ** Math.floor(Math.log10(Math.min(...lat) / 1000));
  const latMax = 10 ** Math.ceil(Math.log10(Math.max(...lat) / 1000));
  const span = PANEL.bottom - PANEL.top;
  const yRps = (v: number) => PANEL.bottom - (v / rpsMax) * span;
  const yLat = (us: number) =>
    PANEL.bottom -
    ((Math.log10(us / 1000) - Math.log10(latMin)) / (Math.log10(latMax) - Math.log10(latMin))) * span;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  const axes = (origin: number, label: string) => {
    out.push(
      `<line x1="${origin}" y1="${PANEL.bottom}" x2="${origin + PANEL.width}" y2="${PANEL.bottom}" stroke="black"/>`,
      `<line x1="${origin}" y1="${PANEL.top}" x2="${origin}" y2="${PANEL.bottom}" stroke="black"/>`,
      `<text x="${origin + PANEL.width / 2}" y="${PANEL.bottom + 34}" text-anchor="middle">concurrency (connections)</text>`,
      `<text x="${origin - 58}" y="${(PANEL.top + PANEL.bottom) / 2}" text-anchor="middle" transform="rotate(-90 ${origin - 58} ${(PANEL.top + PANEL.bottom) / 2})">${esc(label)}</text>`,
    );
    for (const c of levels) {
      const x = xAt(origin, c);
      out.push(
        `<line x1="${x}" y1="${PANEL.bottom}" x2="${x}" y2="${PANEL.bottom + 5}" stroke="black"/>`,
        `<text x="${x}" y="${PANEL.bottom + 18}" text-anchor="middle">${c}</text>`,
      );
    }
  };
  axes(LEFT_X, 'requests per second (median)');
  axes(RIGHT_X, 'latency, ms (log): p50 solid, p99 dashed');
  for (let i = 0; i <= 5; i++) {
    const v = (rpsMax * i) / 5;
    const y = yRps(v);
    out.push(
      `<line x1="${LEFT_X}" y1="${y}" x2="${LEFT_X + PANEL.width}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${LEFT_X - 6}" y="${y + 4}" text-anchor="end">${Math.round(v).toLocaleString('en')}</text>`,
    );
  }
  for (let d = latMin; d <= latMax * 1.0001; d *= 10) {
    const y = yLat(d * 1000);
    out.push(
      `<line x1="${RIGHT_X}" y1="${y}" x2="${RIGHT_X + PANEL.width}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${RIGHT_X - 6}" y="${y + 4}" text-anchor="end">${d >= 1 ? d : d.toPrecision(1)}</text>`,
    );
  }
  paths.forEach((path, i) => {
    const colour = COLOURS[i % COLOURS.length] as string;
    const series = levels
      .map((c) => points.find((p) => p.path === path && p.concurrency === c))
      .filter((p): p is Point => p !== undefined);
    const line = (origin: number, y: (p: Point) => number, dash = '') =>
      `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${series
        .map((p) => `${xAt(origin, p.concurrency).toFixed(1)},${y(p).toFixed(1)}`)
        .join(' ')}"/>`;
    out.push(
      line(LEFT_X, (p) => yRps(med(p, 'rps'))),
      line(RIGHT_X, (p) => yLat(med(p, 'p50'))),
      line(RIGHT_X, (p) => yLat(med(p, 'p99')), ' stroke-dasharray="6 4"'),
    );
    for (const p of series) {
      out.push(
        `<circle cx="${xAt(LEFT_X, p.concurrency).toFixed(1)}" cy="${yRps(med(p, 'rps')).toFixed(1)}" r="3" fill="${colour}"/>`,
      );
    }
    const ly = H - 14;
    const lx = 80 + i * 170;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${colour}" stroke-width="3"/>`,
      `<text x="${lx + 28}" y="${ly}">${esc(path)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
