// Server-drawn SVG charts: no chart library, no script, nothing the CSP has
// to allow. Colours come from classes in dashboard.css; each bar carries a
// <title> so hovering shows its numbers.
import { html } from 'hono/html';
import type { MetricsBucket } from '../sql/metrics.js';
import type { Html } from './format.js';
import { num, pct } from './format.js';

const W = 720;
const H = 150;
const PAD_LEFT = 48;
const PAD_BOTTOM = 20;
const PLOT_W = W - PAD_LEFT - 8;
const PLOT_H = H - PAD_BOTTOM - 8;

const hhmm = (d: Date) => d.toISOString().slice(11, 16);

function axis(buckets: MetricsBucket[], top: string): Html {
  const labelAt = [0, Math.floor(buckets.length / 2), buckets.length - 1];
  const step = PLOT_W / Math.max(buckets.length, 1);
  return html`<line class="axis" x1="${PAD_LEFT}" y1="${8 + PLOT_H}" x2="${W - 8}" y2="${8 + PLOT_H}"></line>
<text class="tick" x="${PAD_LEFT - 6}" y="14" text-anchor="end">${top}</text>
<text class="tick" x="${PAD_LEFT - 6}" y="${8 + PLOT_H}" text-anchor="end">0</text>
${labelAt.map((i, k) =>
  buckets[i]
    ? html`<text class="tick" x="${(PAD_LEFT + i * step + step / 2).toFixed(1)}" y="${H - 4}" text-anchor="${['start', 'middle', 'end'][k]!}">${hhmm(buckets[i]!.at)}</text>`
    : '',
)}`;
}

/** Completed and failed attempts per bucket, stacked. */
export function throughputChart(buckets: MetricsBucket[], bucketLabel: string): Html {
  const max = Math.max(1, ...buckets.map((b) => b.completed + b.failed));
  const step = PLOT_W / Math.max(buckets.length, 1);
  const barW = Math.max(1, step - 1);
  const y = (v: number) => (v / max) * PLOT_H;
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Completed and failed jobs per ${bucketLabel}">
${axis(buckets, num(max))}
${buckets.map((b, i) => {
  const x = (PAD_LEFT + i * step).toFixed(1);
  const hc = y(b.completed);
  const hf = y(b.failed);
  return html`<g><title>${hhmm(b.at)} UTC: ${num(b.completed)} completed, ${num(b.failed)} failed, ${num(b.enqueued)} enqueued</title><rect class="bar ok" x="${x}" y="${(8 + PLOT_H - hc).toFixed(1)}" width="${barW.toFixed(1)}" height="${hc.toFixed(1)}"></rect><rect class="bar fail" x="${x}" y="${(8 + PLOT_H - hc - hf).toFixed(1)}" width="${barW.toFixed(1)}" height="${hf.toFixed(1)}"></rect></g>`;
})}
</svg>`;
}

/** Failed attempts / finished attempts per bucket, as a line; buckets with no attempts leave a gap. */
export function errorRateChart(buckets: MetricsBucket[], bucketLabel: string): Html {
  const rates = buckets.map((b) => (b.completed + b.failed > 0 ? b.failed / (b.completed + b.failed) : null));
  const max = Math.max(0.05, ...rates.map((r) => r ?? 0));
  const step = PLOT_W / Math.max(buckets.length, 1);
  const segments: string[][] = [[]];
  rates.forEach((r, i) => {
    if (r === null) {
      if (segments.at(-1)!.length) segments.push([]);
      return;
    }
    segments.at(-1)!.push(`${(PAD_LEFT + i * step + step / 2).toFixed(1)},${(8 + PLOT_H - (r / max) * PLOT_H).toFixed(1)}`);
  });
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Error rate per ${bucketLabel}">
${axis(buckets, pct(max))}
${segments.filter((s) => s.length).map((s) =>
  s.length === 1
    ? html`<circle class="rate" cx="${s[0]!.split(',')[0]!}" cy="${s[0]!.split(',')[1]!}" r="2"></circle>`
    : html`<polyline class="rate" points="${s.join(' ')}"></polyline>`,
)}
${rates.map((r, i) =>
  r === null
    ? ''
    : html`<rect class="hit" x="${(PAD_LEFT + i * step).toFixed(1)}" y="8" width="${step.toFixed(1)}" height="${PLOT_H}"><title>${hhmm(buckets[i]!.at)} UTC: ${pct(r)} of ${num(buckets[i]!.completed + buckets[i]!.failed)} attempts failed</title></rect>`,
)}
</svg>`;
}
