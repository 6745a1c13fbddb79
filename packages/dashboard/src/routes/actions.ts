// The actions (POST): each checks its input, calls the sluice client (or a
// parametrised statement of this package), and redirects to a page that
// shows the outcome. The guard in app.ts has already refused read-only mode,
// other origins and bad CSRF tokens by the time these run.
import type { Hono } from 'hono';
import { DependencyError, JobNotFoundError, ScheduleNotFoundError } from 'sluice';
import { deadIdsWhere, deadPurge } from 'sluice/admin';
import type { DashEnv, Deps } from '../context.js';
import { DashboardRequestError } from '../errors.js';
import { queueExists } from '../sql/queues.js';
import { query } from '../views/format.js';
import { idList, jobIdParam, optIntField, optName } from './params.js';

/** Jobs one request may replay or purge by id. */
export const MAX_IDS_PER_ACTION = 1_000;
/** Dead jobs "replay all" puts back per click, in chunks of MAX_IDS_PER_ACTION. */
export const MAX_REPLAY_ALL = 10_000;

type Form = Record<string, string | File | (string | File)[]>;
const text = (form: Form, k: string): string | undefined => (typeof form[k] === 'string' ? (form[k] as string) : undefined);

export function actionRoutes(app: Hono<DashEnv>, deps: Deps): void {
  const { opts } = deps;
  const { sluice } = opts;
  const base = opts.basePath;
  const form = (c: { req: { parseBody: (o: { all: true }) => Promise<Form> } }) => c.req.parseBody({ all: true });

  app.post('/jobs/:id/retry', async (c) => {
    const id = jobIdParam('id', c.req.param('id'));
    try {
      await sluice.retry(id);
    } catch (err) {
      if (err instanceof JobNotFoundError) throw new DashboardRequestError(409, `job ${id} is neither dead nor waiting for a retry`, { cause: err });
      throw err;
    }
    return c.redirect(`${base}/jobs/${id}?ok=retried`, 303);
  });

  app.post('/jobs/:id/cancel', async (c) => {
    const id = jobIdParam('id', c.req.param('id'));
    try {
      await sluice.cancel(id);
    } catch (err) {
      if (err instanceof JobNotFoundError) throw new DashboardRequestError(409, `job ${id} is not live (already finished or dead)`, { cause: err });
      throw err;
    }
    return c.redirect(`${base}/jobs/${id}?ok=cancelled`, 303);
  });

  app.post('/dlq/action', async (c) => {
    const f = await form(c);
    const what = text(f, 'do');
    const queue = optName('queue', text(f, 'queue'));
    const name = optName('name', text(f, 'name'));
    const back = (code: string, n: number) => c.redirect(`${base}/dlq${query({ queue, name, ok: code, n })}`, 303);
    switch (what) {
      case 'replay': {
        const ids = idList('ids', f.ids, MAX_IDS_PER_ACTION);
        try {
          return back('replayed', (await sluice.replayDead(ids)).length);
        } catch (err) {
          if ((err as { code?: string }).code === 'P0002' || err instanceof JobNotFoundError) {
            throw new DashboardRequestError(409, 'some selected jobs are no longer dead (replayed or purged meanwhile): nothing was replayed', { cause: err });
          }
          // A parent that ended without completing: the message names the jobs and the ways out.
          if (err instanceof DependencyError) throw new DashboardRequestError(409, err.message, { cause: err });
          throw err;
        }
      }
      case 'purge':
        return back('purged', await deadPurge(sluice.pool, { ids: idList('ids', f.ids, MAX_IDS_PER_ACTION) }));
      case 'replay-all': {
        if (!queue) throw new DashboardRequestError(400, 'queue: replay all needs a queue');
        let replayed = 0;
        while (replayed < MAX_REPLAY_ALL) {
          const ids = await deadIdsWhere(sluice.pool, { queue, name, limit: Math.min(MAX_IDS_PER_ACTION, MAX_REPLAY_ALL - replayed) });
          if (ids.length === 0) break;
          try {
            replayed += (await sluice.replayDead(ids)).length;
          } catch (err) {
            // Earlier rounds committed: say so beside this round's refusal.
            if (err instanceof DependencyError) {
              const before = replayed ? `${replayed} dead job(s) were replayed, then the next ones were refused: ` : '';
              throw new DashboardRequestError(409, `${before}${err.message}`, { cause: err });
            }
            throw err;
          }
        }
        return back('replayed', replayed);
      }
      case 'purge-all':
        if (!queue) throw new DashboardRequestError(400, 'queue: purge all needs a queue');
        return back('purged', await deadPurge(sluice.pool, { queue, name }));
      default:
        throw new DashboardRequestError(400, 'do: must be replay, purge, replay-all or purge-all');
    }
  });

  const existingQueue = async (raw: string) => {
    const name = optName('queue', raw);
    if (!name || !(await queueExists(sluice.pool, name))) throw new DashboardRequestError(404, `no queue named "${raw}"`);
    return name;
  };

  app.post('/queues/:name/pause', async (c) => {
    await sluice.queues.pause(await existingQueue(c.req.param('name')));
    return c.redirect(`${base}/queues?ok=paused`, 303);
  });

  app.post('/queues/:name/resume', async (c) => {
    await sluice.queues.resume(await existingQueue(c.req.param('name')));
    return c.redirect(`${base}/queues?ok=resumed`, 303);
  });

  app.post('/queues/:name/limits', async (c) => {
    const name = await existingQueue(c.req.param('name'));
    const f = await form(c);
    const count = optIntField('rate_limit_count', text(f, 'rate_limit_count'), 1, 1_000_000_000);
    const intervalMs = optIntField('rate_limit_interval_ms', text(f, 'rate_limit_interval_ms'), 1, 2_147_483_647);
    if ((count === null) !== (intervalMs === null)) throw new DashboardRequestError(400, 'rate limit: give both the count and the interval, or neither');
    const overflow = text(f, 'overflow') ?? 'reject';
    if (overflow !== 'reject' && overflow !== 'block' && overflow !== 'drop_oldest' && overflow !== 'drop_newest') {
      throw new DashboardRequestError(400, 'overflow: must be reject, block, drop_oldest or drop_newest');
    }
    const weight = optIntField('weight', text(f, 'weight'), 1, 1_000_000) ?? 1;
    await sluice.queues.configure(name, {
      concurrency: optIntField('concurrency', text(f, 'concurrency'), 1, 1_000_000),
      groupConcurrency: optIntField('group_concurrency', text(f, 'group_concurrency'), 1, 1_000_000),
      rateLimit: count === null || intervalMs === null ? null : { count, intervalMs },
      maxDepth: optIntField('max_depth', text(f, 'max_depth'), 1, 2_000_000_000),
      overflow,
      weight,
    });
    return c.redirect(`${base}/queues?ok=limits`, 303);
  });

  const schedule = async (raw: string, fn: (name: string) => Promise<unknown>) => {
    const name = optName('schedule', raw);
    try {
      return await fn(name ?? '');
    } catch (err) {
      if (err instanceof ScheduleNotFoundError || !name) throw new DashboardRequestError(404, `no schedule named "${raw}"`, { cause: err });
      throw err;
    }
  };

  app.post('/cron/:name/enable', async (c) => {
    await schedule(c.req.param('name'), (n) => sluice.schedules.enable(n));
    return c.redirect(`${base}/cron?ok=enabled`, 303);
  });

  app.post('/cron/:name/disable', async (c) => {
    await schedule(c.req.param('name'), (n) => sluice.schedules.disable(n));
    return c.redirect(`${base}/cron?ok=disabled`, 303);
  });

  app.post('/cron/:name/run', async (c) => {
    const id = (await schedule(c.req.param('name'), (n) => sluice.schedules.runNow(n))) as number;
    return c.redirect(`${base}/cron${query({ ok: 'ran', n: id })}`, 303);
  });
}
