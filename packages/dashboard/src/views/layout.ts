// The page frame: navigation, the read-only badge, sign-out, notices. No
// inline script or style anywhere (the Content-Security-Policy forbids
// them): behaviour comes from /assets/dashboard.js, looks from dashboard.css,
// and data for the script rides on data-* attributes.
import { html } from 'hono/html';
import type { Html } from './format.js';
import { documentHead } from './head.js';

export interface PageContext {
  /** Mount prefix, "" at the root. */
  base: string;
  /** Token for this viewer's forms. */
  csrf: string;
  readOnly: boolean;
  /** The viewer signed in through the dashboard's own form and can sign out. */
  canSignOut: boolean;
  showPayloads: boolean;
  showStackTraces: boolean;
  refreshIntervalMs: number;
  now: number;
}

export type Section = 'overview' | 'jobs' | 'dlq' | 'queues' | 'cron' | 'workers';

const NAV: [Section, string, string][] = [
  ['overview', 'Overview', '/'],
  ['jobs', 'Jobs', '/jobs'],
  ['dlq', 'Dead letters', '/dlq'],
  ['queues', 'Queues', '/queues'],
  ['cron', 'Cron', '/cron'],
  ['workers', 'Workers', '/workers'],
];

export interface Notice {
  kind: 'ok' | 'error';
  text: string;
}

export function layout(ctx: PageContext, page: { title: string; section: Section | null; body: Html; notice?: Notice | null }): Html {
  const { base } = ctx;
  return html`${documentHead(base, page.title, true)}
<body data-base="${base}" data-refresh-ms="${ctx.refreshIntervalMs}">
<header class="top">
  <a class="brand" href="${base}/">sluice</a>
  <nav>${NAV.map(
    ([key, label, path]) => html`<a href="${base}${path}"${key === page.section ? html` class="active" aria-current="page"` : ''}>${label}</a>`,
  )}</nav>
  <div class="who">
    ${ctx.readOnly ? html`<span class="badge ro" title="Actions are hidden and refused">read-only</span>` : ''}
    ${ctx.canSignOut
      ? html`<form method="post" action="${base}/logout" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}"><button class="link">Sign out</button></form>`
      : ''}
  </div>
</header>
<main>
${page.notice ? html`<p class="notice ${page.notice.kind}" role="status">${page.notice.text}</p>` : ''}
${page.body}
</main>
</body>
</html>`;
}

/** A POST form with the CSRF token; rendered only when actions are allowed. */
export function actionForm(ctx: PageContext, action: string, label: string, opts: { confirm?: string; danger?: boolean; fields?: Record<string, string> } = {}): Html | '' {
  if (ctx.readOnly) return '';
  return html`<form method="post" action="${ctx.base}${action}" class="inline"${opts.confirm ? html` data-confirm="${opts.confirm}"` : ''}><input type="hidden" name="_csrf" value="${ctx.csrf}">${Object.entries(
    opts.fields ?? {},
  ).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button class="${opts.danger ? 'danger' : 'action'}">${label}</button></form>`;
}

export function stateBadge(state: string): Html {
  return html`<span class="state s-${state}">${state}</span>`;
}
