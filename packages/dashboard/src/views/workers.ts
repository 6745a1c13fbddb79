// Workers: alive or not (by heartbeat age), what they serve and run.
import { html } from 'hono/html';
import type { WorkerStatus } from 'sluice/admin';
import { duration, num, when, type Html } from './format.js';
import type { PageContext } from './layout.js';

export function workersPage(ctx: PageContext, rows: WorkerStatus[], deadAfterMs: number): Html {
  return html`<div class="toolbar"><h1>Workers</h1></div>
<p class="quiet small">A worker is dead once its heartbeat is older than ${duration(deadAfterMs)}; its running jobs are then rescued.</p>
${
  rows.length === 0
    ? html`<p class="quiet">No worker has registered.</p>`
    : html`<table class="grid" id="workers">
<thead><tr><th>Worker</th><th>Status</th><th>Heartbeat</th><th>Service</th><th>Host / pid</th><th>Queues</th><th class="n">Running</th><th class="n">Concurrency</th><th>Started</th><th>Version</th></tr></thead>
<tbody>${rows.map(
        (w) => html`<tr data-worker="${w.id}">
<td><code>${w.id}</code></td>
<td>${w.alive ? html`<span class="badge active">alive</span>` : html`<span class="badge dead">dead</span>`}</td>
<td>${duration(ctx.now - w.heartbeatAt.getTime())} ago</td>
<td>${w.service ?? '—'}</td>
<td>${w.host} / ${w.pid}</td>
<td>${w.queues.join(', ')}</td>
<td class="n">${w.running ? html`<a href="${ctx.base}/jobs?state=running&amp;worker=${encodeURIComponent(w.id)}">${num(w.running)}</a>` : '0'}</td>
<td class="n">${num(w.concurrency)}</td>
<td>${when(w.startedAt, ctx.now)}</td>
<td>${w.version}</td>
</tr>`,
      )}</tbody></table>`
}`;
}
