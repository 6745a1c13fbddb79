// Cron schedules: expression, zone, next and last run, enable/disable and
// run now. A schedule's payload is shown only where payloads may be.
import { html } from 'hono/html';
import type { CronScheduleView } from '../sql/cron.js';
import { prettyJson, when, type Html } from './format.js';
import { actionForm, type PageContext } from './layout.js';

export function cronPage(ctx: PageContext, rows: CronScheduleView[]): Html {
  const path = (name: string, verb: string) => `/cron/${encodeURIComponent(name)}/${verb}`;
  return html`<div class="toolbar"><h1>Cron schedules</h1></div>
${
  rows.length === 0
    ? html`<p class="quiet">No schedules. Declare them in a worker or add one with <code>sluice cron add</code>.</p>`
    : html`<table class="grid" id="schedules">
<thead><tr><th>Name</th><th>Expression</th><th>Job</th><th>Status</th><th>Next run</th><th>Last run</th><th>Misfire</th>${ctx.showPayloads ? html`<th>Payload</th>` : ''}<th></th></tr></thead>
<tbody>${rows.map(
        (r) => html`<tr data-schedule="${r.name}">
<td>${r.name}<div class="quiet small">${r.declaredIn === 'code' ? (r.service ? html`declared in code by ${r.service}` : 'declared in code') : 'added by SQL/CLI'}</div></td>
<td><code>${r.cron}</code> <span class="quiet small">${r.timezone}</span></td>
<td><a href="${ctx.base}/jobs?name=${encodeURIComponent(r.jobName)}">${r.jobName}</a></td>
<td>${r.enabled ? html`<span class="badge active">enabled</span>` : html`<span class="badge paused">disabled</span>`}${r.lastError ? html`<div class="err small">${r.lastError}</div>` : ''}</td>
<td>${r.enabled ? when(r.nextRunAt, ctx.now) : '—'}</td>
<td>${when(r.lastRunAt, ctx.now)}</td>
<td>${r.misfire}</td>
${ctx.showPayloads ? html`<td><pre class="json small">${prettyJson(r.payload, 2_000)}</pre></td>` : ''}
<td class="row-actions">${r.enabled ? actionForm(ctx, path(r.name, 'disable'), 'Disable') : actionForm(ctx, path(r.name, 'enable'), 'Enable')}${actionForm(ctx, path(r.name, 'run'), 'Run now')}</td>
</tr>`,
      )}</tbody></table>`
}`;
}
