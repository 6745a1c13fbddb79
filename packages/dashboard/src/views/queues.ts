// Queues: depth, pause/resume, and a form for the limits (concurrency
// across all workers, per-group concurrency, rate limit, bound and weight).
import { html } from 'hono/html';
import type { QueueStats } from 'sluice';
import type { QueueLimitsRow } from '../sql/queues.js';
import { num, type Html } from './format.js';
import { actionForm, type PageContext } from './layout.js';

const v = (n: number | null) => (n === null ? '' : String(n));

function limitsForm(ctx: PageContext, q: QueueLimitsRow): Html | '' {
  if (ctx.readOnly) return '';
  return html`<details class="limits"><summary>Limits</summary>
<form method="post" action="${ctx.base}/queues/${encodeURIComponent(q.name)}/limits" class="limits-form">
<input type="hidden" name="_csrf" value="${ctx.csrf}">
<label>Concurrency <input name="concurrency" inputmode="numeric" value="${v(q.concurrency)}" placeholder="none" size="6"></label>
<label>Per group <input name="group_concurrency" inputmode="numeric" value="${v(q.group_concurrency)}" placeholder="none" size="6"></label>
<label>Rate <input name="rate_limit_count" inputmode="numeric" value="${v(q.rate_limit_count)}" placeholder="none" size="6"> per
<input name="rate_limit_interval_ms" inputmode="numeric" value="${v(q.rate_limit_interval_ms)}" placeholder="ms" size="7"> ms</label>
<label>Max depth <input name="max_depth" inputmode="numeric" value="${v(q.max_depth)}" placeholder="none" size="8"></label>
<label>Overflow <select name="overflow">${['reject', 'block', 'drop_oldest', 'drop_newest'].map((o) => html`<option${o === q.overflow ? ' selected' : ''}>${o}</option>`)}</select></label>
<label>Weight <input name="weight" inputmode="numeric" value="${q.weight}" size="4"></label>
<button class="action">Save limits</button>
<span class="quiet small">Empty removes a limit.</span>
</form></details>`;
}

export function queuesPage(ctx: PageContext, d: { limits: QueueLimitsRow[]; stats: Map<string, QueueStats> }): Html {
  const lim = (n: number | null) => (n === null ? '—' : num(n));
  return html`<div class="toolbar"><h1>Queues</h1></div>
${
  d.limits.length === 0
    ? html`<p class="quiet">No queues yet.</p>`
    : html`<table class="grid" id="queues">
<thead><tr><th>Queue</th><th>Status</th><th class="n">Available</th><th class="n">Running</th><th class="n">Concurrency</th><th class="n">Per group</th><th>Rate limit</th><th class="n">Max depth</th><th class="n">Weight</th><th></th></tr></thead>
<tbody>${d.limits.map((q) => {
        const s = d.stats.get(q.name);
        return html`<tr data-queue="${q.name}">
<td><a href="${ctx.base}/jobs?queue=${encodeURIComponent(q.name)}">${q.name}</a></td>
<td>${q.paused ? html`<span class="badge paused">paused</span>` : html`<span class="badge active">active</span>`}</td>
<td class="n">${s ? num(s.available) : '—'}</td><td class="n">${s ? num(s.running) : '—'}</td>
<td class="n">${lim(q.concurrency)}</td><td class="n">${lim(q.group_concurrency)}</td>
<td>${q.rate_limit_count === null ? '—' : `${num(q.rate_limit_count)} per ${num(q.rate_limit_interval_ms ?? 0)} ms`}</td>
<td class="n">${q.max_depth === null ? '—' : html`${num(q.max_depth)} <span class="quiet small">${q.overflow}</span>`}</td>
<td class="n">${q.weight}</td>
<td class="row-actions">${q.paused
          ? actionForm(ctx, `/queues/${encodeURIComponent(q.name)}/resume`, 'Resume')
          : actionForm(ctx, `/queues/${encodeURIComponent(q.name)}/pause`, 'Pause')}${limitsForm(ctx, q)}</td>
</tr>`;
      })}</tbody></table>`
}`;
}
