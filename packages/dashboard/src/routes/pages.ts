// The pages (GET). Each reads what it shows with a few indexed queries; none
// counts a big table.
import type { Hono } from 'hono';
import { alertListActive, jobList, queueStatsAll, replicaLag, workerStatus } from 'sluice/admin';
import { pageContext, type DashContext, type DashEnv, type Deps } from '../context.js';
import { DashboardRequestError } from '../errors.js';
import { cronSchedules } from '../sql/cron.js';
import { jobDetail } from '../sql/jobs.js';
import { metricsSeries, type ChartRange } from '../sql/metrics.js';
import { queueLimitsAll, queueNames } from '../sql/queues.js';
import { cronPage } from '../views/cron.js';
import { jobPage } from '../views/job.js';
import { dlqPage, jobsPage } from '../views/jobs.js';
import { layout, type Notice } from '../views/layout.js';
import { overviewLive, overviewPage, type OverviewData } from '../views/overview.js';
import { queuesPage } from '../views/queues.js';
import { workersPage } from '../views/workers.js';
import { jobFilter, jobIdParam, optJobId, optName } from './params.js';

// A Map, not an object literal: the code comes from the URL, and an object
// would answer "constructor" or "__proto__" with what Object.prototype holds.
const NOTICES = new Map<string, (n: string | undefined) => string>([
  ['replayed', (n) => `Replayed ${n ?? 0} dead job(s): they are back in their queues.`],
  ['purged', (n) => `Purged ${n ?? 0} dead job(s).`],
  ['retried', () => 'The job will run now.'],
  ['cancelled', () => 'The job was cancelled.'],
  ['paused', () => 'Queue paused: running jobs finish, no new job starts.'],
  ['resumed', () => 'Queue resumed.'],
  ['limits', () => 'Limits saved.'],
  ['enabled', () => 'Schedule enabled.'],
  ['disabled', () => 'Schedule disabled.'],
  ['ran', (n) => `Enqueued job ${n ?? ''}.`],
]);

/** The notice a redirect after an action asked for; fixed texts only, so a link cannot put words on the page. */
function notice(c: DashContext): Notice | null {
  const code = c.req.query('ok');
  const make = code ? NOTICES.get(code) : undefined;
  const n = c.req.query('n');
  return make ? { kind: 'ok', text: make(n && /^\d{1,16}$/.test(n) ? n : undefined) } : null;
}

async function overviewData(deps: Deps, c: DashContext): Promise<OverviewData> {
  const range: ChartRange = c.req.query('range') === 'day' ? 'day' : 'hour';
  const queue = optName('queue', c.req.query('queue'));
  const { sluice } = deps.opts;
  const db = sluice.readPool;
  const [queues, alerts, workers, series, replica] = await Promise.all([
    queueStatsAll(db, null, deps.opts.workerDeadAfterMs),
    alertListActive(db, deps.opts.workerDeadAfterMs),
    workerStatus(db, deps.opts.workerDeadAfterMs),
    metricsSeries(db, range, queue),
    db === sluice.pool ? null : replicaLag(db),
  ]);
  return { queues, alerts, workersAlive: workers.filter((w) => w.alive).length, series, range, queue, replica };
}

export function overviewHandler(deps: Deps) {
  return async (c: DashContext) => {
    const ctx = pageContext(deps, c);
    return c.html(layout(ctx, { title: 'Overview', section: 'overview', body: overviewPage(ctx, await overviewData(deps, c)), notice: notice(c) }));
  };
}

export function pageRoutes(app: Hono<DashEnv>, deps: Deps): void {
  const { opts } = deps;
  // Pages only read: a replica when the Sluice has one (actions write through sluice.pool).
  const db = opts.sluice.readPool;

  app.get('/', overviewHandler(deps));

  // The overview's live part alone, fetched by dashboard.js every refreshIntervalMs.
  app.get('/live', async (c) => c.html(overviewLive(pageContext(deps, c), await overviewData(deps, c))));

  app.get('/jobs', async (c) => {
    const ctx = pageContext(deps, c);
    const { filter, text, tag } = jobFilter((k) => c.req.query(k));
    const before = optJobId('before', c.req.query('before'));
    const [page, queues] = await Promise.all([
      jobList(db, { ...filter, beforeId: before, limit: opts.pageSize, searchWindow: opts.searchWindow }),
      queueNames(db),
    ]);
    return c.html(layout(ctx, { title: 'Jobs', section: 'jobs', body: jobsPage(ctx, { filter, text, tag, page, queues }), notice: notice(c) }));
  });

  app.get('/jobs/:id', async (c) => {
    const ctx = pageContext(deps, c);
    const id = jobIdParam('id', c.req.param('id'));
    const job = await jobDetail(db, id, { payloads: opts.showPayloads, stackTraces: opts.showStackTraces });
    if (!job) throw new DashboardRequestError(404, `no job with id ${id}`);
    return c.html(layout(ctx, { title: `Job ${id}`, section: 'jobs', body: jobPage(ctx, job), notice: notice(c) }));
  });

  app.get('/dlq', async (c) => {
    const ctx = pageContext(deps, c);
    const filter = { queue: optName('queue', c.req.query('queue')), name: optName('name', c.req.query('name')), state: 'dead' as const, tag: null, id: null, worker: null };
    const before = optJobId('before', c.req.query('before'));
    const [page, queues] = await Promise.all([
      jobList(db, { ...filter, beforeId: before, limit: opts.pageSize, searchWindow: opts.searchWindow }),
      queueNames(db),
    ]);
    return c.html(layout(ctx, { title: 'Dead letters', section: 'dlq', body: dlqPage(ctx, { filter, page, queues }), notice: notice(c) }));
  });

  app.get('/queues', async (c) => {
    const ctx = pageContext(deps, c);
    const [limits, stats] = await Promise.all([queueLimitsAll(db), queueStatsAll(db, null, opts.workerDeadAfterMs)]);
    const byName = new Map(stats.map((s) => [s.queue, s]));
    return c.html(layout(ctx, { title: 'Queues', section: 'queues', body: queuesPage(ctx, { limits, stats: byName }), notice: notice(c) }));
  });

  app.get('/cron', async (c) => {
    const ctx = pageContext(deps, c);
    const rows = await cronSchedules(db, { payloads: opts.showPayloads });
    return c.html(layout(ctx, { title: 'Cron', section: 'cron', body: cronPage(ctx, rows), notice: notice(c) }));
  });

  app.get('/workers', async (c) => {
    const ctx = pageContext(deps, c);
    const rows = await workerStatus(db, opts.workerDeadAfterMs);
    rows.sort((a, b) => Number(b.alive) - Number(a.alive) || b.heartbeatAt.getTime() - a.heartbeatAt.getTime());
    return c.html(layout(ctx, { title: 'Workers', section: 'workers', body: workersPage(ctx, rows, opts.workerDeadAfterMs), notice: notice(c) }));
  });
}
