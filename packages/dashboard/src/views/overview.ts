// The overview: alerts, totals, one row per queue (depth by state, oldest
// wait, throughput, error rate) and the charts. The part inside #live is
// also served alone, for the browser to swap in on each refresh.
import { html } from 'hono/html';
import type { QueueStats } from 'sluice';
import type { ActiveAlert, ReplicaLag } from 'sluice/admin';
import type { ChartRange, MetricsBucket } from '../sql/metrics.js';
import { errorRateChart, throughputChart } from './chart.js';
import { duration, num, pct, query, utc, type Html } from './format.js';
import type { PageContext } from './layout.js';

export interface OverviewData {
  queues: QueueStats[];
  alerts: ActiveAlert[];
  workersAlive: number;
  series: MetricsBucket[];
  range: ChartRange;
  queue: string | null;
  /** Set when the pages read from a replica. */
  replica: ReplicaLag | null;
}

const sum = (qs: QueueStats[], f: (q: QueueStats) => number) => qs.reduce((a, q) => a + f(q), 0);

function card(label: string, value: string, href?: string): Html {
  return html`<div class="card"><div class="value">${href ? html`<a href="${href}">${value}</a>` : value}</div><div class="label">${label}</div></div>`;
}

export function overviewLive(ctx: PageContext, d: OverviewData): Html {
  const { base } = ctx;
  const q = d.queues;
  const estimated = q.some((x) => x.estimated);
  const bucketLabel = d.range === 'hour' ? 'minute' : '15 minutes';
  return html`<section class="alerts">${
    d.alerts.length
      ? html`<h2>Alerts</h2><ul class="alert-list">${d.alerts.map((a) => html`<li class="alert a-${a.alert}"><a href="${base}/jobs${query({ queue: a.queue })}">${a.message}</a></li>`)}</ul>`
      : html`<p class="quiet">No alerts.</p>`
  }</section>
<section class="cards">
  ${card('available', num(sum(q, (x) => x.available)), `${base}/jobs?state=available`)}
  ${card('running', num(sum(q, (x) => x.running)), `${base}/jobs?state=running`)}
  ${card('scheduled', num(sum(q, (x) => x.scheduled)), `${base}/jobs?state=scheduled`)}
  ${card('dead', num(sum(q, (x) => x.dead)), `${base}/dlq`)}
  ${card('completed / s (5 min)', sum(q, (x) => x.completedPerS5m).toFixed(1))}
  ${card('workers alive', num(d.workersAlive), `${base}/workers`)}
  ${d.replica ? card('read replica lag', duration(d.replica.lagSeconds * 1000)) : ''}
</section>
<section>
<h2>Queues</h2>
${
  q.length === 0
    ? html`<p class="quiet">No queues yet: a queue appears with its first job.</p>`
    : html`<table class="grid" id="queue-table">
<thead><tr><th>Queue</th><th class="n">Available</th><th class="n">Scheduled</th><th class="n">Running</th><th class="n">Waiting</th><th class="n">Dead</th><th class="n">Oldest wait</th><th class="n">Done/s (5m)</th><th class="n">Error rate (5m)</th><th class="n">Workers</th></tr></thead>
<tbody>${q.map(
        (x) => html`<tr data-queue="${x.queue}">
<td><a href="${base}/jobs${query({ queue: x.queue })}">${x.queue}</a>${x.paused ? html` <span class="badge paused">paused</span>` : ''}</td>
<td class="n">${num(x.available)}</td><td class="n">${num(x.scheduled)}</td><td class="n">${num(x.running)}</td><td class="n">${num(x.waiting)}</td>
<td class="n">${x.dead ? html`<a href="${base}/dlq${query({ queue: x.queue })}">${num(x.dead)}</a>` : '0'}</td>
<td class="n">${x.oldestWaitSeconds === null ? '—' : duration(x.oldestWaitSeconds * 1000)}</td>
<td class="n">${x.completedPerS5m.toFixed(2)}</td>
<td class="n${x.errorRate5m !== null && x.errorRate5m > 0.1 ? ' bad' : ''}">${pct(x.errorRate5m)}</td>
<td class="n">${num(x.workersAlive)}</td></tr>`,
      )}</tbody></table>
${estimated ? html`<p class="quiet small">Counts of large queues are estimates from the planner's statistics (no full count on millions of rows).</p>` : ''}`
}
</section>
<section>
<h2>Throughput${d.queue ? html` of ${d.queue}` : ''} <span class="quiet small">per ${bucketLabel}, last ${d.range}</span></h2>
<div class="legend"><span class="key ok"></span>completed <span class="key fail"></span>failed</div>
${throughputChart(d.series, bucketLabel)}
<h2>Error rate <span class="quiet small">failed / finished attempts</span></h2>
${errorRateChart(d.series, bucketLabel)}
</section>
<p class="quiet small" id="updated">Updated ${utc(new Date(ctx.now))}</p>`;
}

export function overviewPage(ctx: PageContext, d: OverviewData): Html {
  const { base } = ctx;
  const liveUrl = `${base}/live${query({ range: d.range, queue: d.queue })}`;
  return html`<div class="toolbar">
<h1>Overview</h1>
<form method="get" action="${base}/" class="filters">
<label>Charts <select name="range">${(['hour', 'day'] as const).map((r) => html`<option value="${r}"${r === d.range ? ' selected' : ''}>last ${r}</option>`)}</select></label>
<label>Queue <select name="queue"><option value="">all</option>${d.queues.map((x) => html`<option${x.queue === d.queue ? ' selected' : ''}>${x.queue}</option>`)}</select></label>
<button>Show</button>
</form>
<span class="live-status quiet small" id="live-status" aria-live="polite">live</span>
</div>
<div id="live" data-live-url="${liveUrl}">${overviewLive(ctx, d)}</div>`;
}
