// One job: its state, a timeline built from its timestamps and attempt
// errors, each failed attempt with its error (and stack when allowed),
// progress, result and payload (when allowed), and the actions its state
// permits.
import { html } from 'hono/html';
import type { JobDetail, JobErrorView } from '../sql/jobs.js';
import { duration, prettyJson, utc, when, type Html } from './format.js';
import { actionForm, stateBadge, type PageContext } from './layout.js';

interface TimelineEvent {
  at: Date;
  label: string;
  kind: 'info' | 'ok' | 'fail' | 'now';
}

/** What is known of the job's path, oldest first. */
export function timeline(j: JobDetail): TimelineEvent[] {
  const events: TimelineEvent[] = [{ at: j.createdAt, label: 'enqueued', kind: 'info' }];
  if (j.runAt.getTime() - j.createdAt.getTime() > 1000 && j.errors.length === 0) {
    events.push({ at: j.runAt, label: 'due (scheduled for this time)', kind: 'info' });
  }
  for (const e of j.errors) {
    events.push({ at: new Date(e.at), label: `attempt ${e.attempt} ${e.kind === 'error' ? 'failed' : e.kind}: ${e.name}`, kind: 'fail' });
  }
  if (j.attemptedAt && !j.errors.some((e) => Math.abs(new Date(e.at).getTime() - j.attemptedAt!.getTime()) < 1)) {
    events.push({ at: j.attemptedAt, label: `attempt ${j.attempt} started`, kind: 'info' });
  }
  if (j.state === 'scheduled' && j.errors.length) events.push({ at: j.runAt, label: 'retry due', kind: 'now' });
  if (j.finishedAt) {
    const label = j.state === 'dead' ? `moved to the dead-letter queue (${j.reason ?? 'dead'})` : j.state;
    events.push({ at: j.finishedAt, label, kind: j.state === 'completed' ? 'ok' : 'fail' });
  } else if (j.state === 'running') {
    events.push({ at: new Date(), label: `running on ${j.lockedBy ?? '?'}`, kind: 'now' });
  }
  return events.sort((a, b) => a.at.getTime() - b.at.getTime());
}

function attempt(ctx: PageContext, e: JobErrorView): Html {
  return html`<li class="attempt">
<div><strong>Attempt ${e.attempt}</strong> · ${e.kind} · <code>${e.name}</code> · <time datetime="${e.at}">${utc(new Date(e.at))}</time></div>
<pre class="message">${e.message}</pre>
${e.stack ? html`<details><summary>Stack trace</summary><pre class="stack">${e.stack}</pre></details>` : ''}
</li>`;
}

function actions(ctx: PageContext, j: JobDetail): Html | '' {
  if (ctx.readOnly) return '';
  const forms: (Html | '')[] = [];
  if (j.state === 'dead') {
    forms.push(actionForm(ctx, `/jobs/${j.id}/retry`, 'Replay'));
    forms.push(actionForm(ctx, `/dlq/action`, 'Purge', { danger: true, confirm: 'Delete this dead job for good?', fields: { do: 'purge', ids: String(j.id) } }));
  }
  if (j.state === 'scheduled' && j.errors.length) forms.push(actionForm(ctx, `/jobs/${j.id}/retry`, 'Retry now'));
  if (['waiting', 'scheduled', 'available', 'running'].includes(j.state)) {
    forms.push(actionForm(ctx, `/jobs/${j.id}/cancel`, 'Cancel', { danger: true, confirm: 'Cancel this job?' }));
  }
  return forms.length ? html`<div class="actions">${forms}</div>` : '';
}

export function jobPage(ctx: PageContext, j: JobDetail): Html {
  const { base, now } = ctx;
  const hiddenNote = html`<p class="quiet">Hidden: this dashboard does not show payloads to its viewers.</p>`;
  return html`<div class="toolbar"><h1>Job ${j.id} ${stateBadge(j.state)}</h1>${actions(ctx, j)}</div>
<dl class="facts">
<dt>Name</dt><dd>${j.name}</dd>
<dt>Queue</dt><dd><a href="${base}/jobs?queue=${encodeURIComponent(j.queue)}">${j.queue}</a></dd>
<dt>Attempt</dt><dd>${j.attempt} of ${j.maxAttempts}</dd>
<dt>Priority</dt><dd>${j.priority}</dd>
<dt>Created</dt><dd>${when(j.createdAt, now)}</dd>
<dt>Run at</dt><dd>${when(j.runAt, now)}</dd>
${j.finishedAt ? html`<dt>${j.state === 'dead' ? 'Died' : 'Finished'}</dt><dd>${when(j.finishedAt, now)}</dd>` : ''}
${j.lockedBy ? html`<dt>Worker</dt><dd>${j.lockedBy}${j.lockedUntil ? html` (lease until ${utc(j.lockedUntil)})` : ''}</dd>` : ''}
${j.timeoutMs ? html`<dt>Timeout</dt><dd>${duration(j.timeoutMs)}</dd>` : ''}
${j.tags.length ? html`<dt>Tags</dt><dd>${j.tags.map((t) => html`<a class="tag" href="${base}/jobs?tag=${encodeURIComponent(t)}">${t}</a>`)}</dd>` : ''}
${j.uniqueKey ? html`<dt>Unique key</dt><dd><code>${j.uniqueKey}</code></dd>` : ''}
${j.groupKey ? html`<dt>Group</dt><dd><code>${j.groupKey}</code></dd>` : ''}
${j.batchId ? html`<dt>Batch</dt><dd>${j.batchId}</dd>` : ''}
${j.dependsOn?.length ? html`<dt>Depends on</dt><dd>${j.dependsOn.map((id) => html`<a href="${base}/jobs/${id}">${id}</a> `)}</dd>` : ''}
</dl>
${
  j.progress !== null
    ? html`<section><h2>Progress</h2><progress max="100" value="${j.progress}">${j.progress}%</progress> <span>${j.progress}%</span>${j.progressMessage ? html` <span class="quiet">${j.progressMessage}</span>` : ''}</section>`
    : ''
}
<section><h2>Timeline</h2><ol class="timeline">${timeline(j).map(
    (e) => html`<li class="t-${e.kind}"><time datetime="${e.at.toISOString()}">${utc(e.at)}</time> <span>${e.label}</span></li>`,
  )}</ol></section>
<section><h2>Attempts with errors</h2>${
    j.errors.length
      ? html`<ol class="attempts">${j.errors.map((e) => attempt(ctx, e))}</ol>${!ctx.showStackTraces ? html`<p class="quiet small">Stack traces are hidden on this dashboard.</p>` : ''}`
      : html`<p class="quiet">No failed attempt.</p>`
  }</section>
${
  j.state === 'completed'
    ? html`<section><h2>Result</h2>${ctx.showPayloads ? html`<pre class="json">${prettyJson(j.result)}</pre>` : hiddenNote}</section>`
    : ''
}
<section><h2>Payload</h2>${ctx.showPayloads ? html`<pre class="json" id="payload">${prettyJson(j.payload)}</pre>` : hiddenNote}</section>`;
}
