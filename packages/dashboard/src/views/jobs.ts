// The jobs list (filters, keyset pages) and the dead-letter list, which is
// the same table with checkboxes for replay and purge.
import { html } from 'hono/html';
import { JOB_STATES, type JobListItem, type JobListPage } from 'sluice/admin';
import type { JobFilter } from '../routes/params.js';
import { num, query, when, type Html } from './format.js';
import { stateBadge, type PageContext } from './layout.js';

/** The query that gives this page's filters again: the search box as typed, and the tag link's text apart. */
function filterQuery(f: JobFilter, text: string | null, tag: string | null): Record<string, string | null> {
  return { queue: f.queue, state: f.state, name: f.name, q: text, tag, worker: f.worker };
}

function pager(ctx: PageContext, path: string, params: Record<string, string | null>, page: JobListPage): Html {
  const first = `${ctx.base}${path}${query(params)}`;
  return html`<div class="pager">
${page.searchedDownTo !== null ? html`<span class="quiet small">Searched job ids down to ${num(page.searchedDownTo)}; older ids are on the next page.</span>` : ''}
<a href="${first}">Newest</a>
${page.nextBefore !== null ? html`<a rel="next" href="${ctx.base}${path}${query({ ...params, before: page.nextBefore })}">Older →</a>` : html`<span class="quiet">end</span>`}
</div>`;
}

function row(ctx: PageContext, j: JobListItem, selectable: boolean): Html {
  return html`<tr data-id="${j.id}">
${selectable ? html`<td><input type="checkbox" name="ids" value="${j.id}" form="dlq-form" aria-label="select job ${j.id}"></td>` : ''}
<td><a href="${ctx.base}/jobs/${j.id}">${j.id}</a></td>
<td>${j.name}</td>
<td><a href="${ctx.base}/jobs${query({ queue: j.queue })}">${j.queue}</a></td>
<td>${stateBadge(j.state)}${j.reason ? html` <span class="quiet small">${j.reason}</span>` : ''}</td>
<td class="n">${j.attempt}/${j.maxAttempts}</td>
<td>${j.tags.map((t) => html`<span class="tag">${t}</span>`)}</td>
<td>${when(j.finishedAt ?? j.createdAt, ctx.now)}</td>
<td class="err">${j.lastError ?? ''}</td>
</tr>`;
}

function table(ctx: PageContext, rows: JobListItem[], selectable: boolean): Html {
  if (rows.length === 0) return html`<p class="quiet">No jobs match on this page.</p>`;
  return html`<table class="grid jobs">
<thead><tr>${selectable ? html`<th><input type="checkbox" id="select-all" aria-label="select all"></th>` : ''}<th>Id</th><th>Name</th><th>Queue</th><th>State</th><th class="n">Attempt</th><th>Tags</th><th>Created / finished</th><th>Last error</th></tr></thead>
<tbody>${rows.map((j) => row(ctx, j, selectable))}</tbody></table>`;
}

export function jobsPage(ctx: PageContext, d: { filter: JobFilter; text: string | null; tag: string | null; page: JobListPage; queues: string[] }): Html {
  const { base } = ctx;
  const f = d.filter;
  return html`<div class="toolbar"><h1>Jobs</h1></div>
<form method="get" action="${base}/jobs" class="filters" id="job-filters">
<label>Queue <select name="queue"><option value="">any</option>${d.queues.map((q) => html`<option${q === f.queue ? ' selected' : ''}>${q}</option>`)}</select></label>
<label>State <select name="state"><option value="">any</option>${JOB_STATES.map((s) => html`<option${s === f.state ? ' selected' : ''}>${s}</option>`)}</select></label>
<label>Name <input name="name" value="${f.name ?? ''}" placeholder="email.send" size="16"></label>
<label>Id or tag <input name="q" value="${d.text ?? ''}" placeholder="1234 or tag text" size="16"></label>
${d.tag ? html`<label>Tag <input name="tag" value="${d.tag}" size="16"></label>` : ''}
${f.worker ? html`<label>Worker <input name="worker" value="${f.worker}" size="24"></label>` : ''}
<button>Filter</button>
</form>
${table(ctx, d.page.jobs, false)}
${pager(ctx, '/jobs', filterQuery(f, d.text, d.tag), d.page)}`;
}

export function dlqPage(ctx: PageContext, d: { filter: JobFilter; page: JobListPage; queues: string[] }): Html {
  const { base } = ctx;
  const f = d.filter;
  const selectable = !ctx.readOnly && d.page.jobs.length > 0;
  // "All in queue" acts on every dead job of the queue, not on this page, so
  // it is offered even when this page (one search window) found none.
  const queueWide = !ctx.readOnly && f.queue !== null;
  return html`<div class="toolbar"><h1>Dead letters</h1></div>
<form method="get" action="${base}/dlq" class="filters">
<label>Queue <select name="queue"><option value="">any</option>${d.queues.map((q) => html`<option${q === f.queue ? ' selected' : ''}>${q}</option>`)}</select></label>
<label>Name <input name="name" value="${f.name ?? ''}" size="16"></label>
<button>Filter</button>
</form>
${
  selectable || queueWide
    ? html`<form method="post" action="${base}/dlq/action" id="dlq-form" class="bulk" data-confirm-purge="Delete the selected dead jobs for good?">
<input type="hidden" name="_csrf" value="${ctx.csrf}">
${selectable
  ? html`<button name="do" value="replay" class="action">Replay selected</button>
<button name="do" value="purge" class="danger">Purge selected</button>`
  : ''}
${queueWide
  ? html`${selectable ? html`<span class="sep"></span>` : ''}
<input type="hidden" name="queue" value="${f.queue}">${f.name ? html`<input type="hidden" name="name" value="${f.name}">` : ''}
<button name="do" value="replay-all" class="action">Replay all in ${f.queue}${f.name ? ` (${f.name})` : ''}</button>
<button name="do" value="purge-all" class="danger">Purge all in ${f.queue}${f.name ? ` (${f.name})` : ''}</button>`
  : ''}
</form>`
    : ''
}
${table(ctx, d.page.jobs, selectable)}
${pager(ctx, '/dlq', { queue: f.queue, name: f.name }, d.page)}`;
}
