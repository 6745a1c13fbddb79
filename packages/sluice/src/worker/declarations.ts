// What a worker writes to the database when it starts: its job types (so SQL
// enqueue uses the same defaults), its row in sluice.workers, its cron
// schedules and its subscriptions.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { translateDbError } from '../db-errors.js';
import type { Queryable } from '../executor.js';
import type { JobDefinition } from '../job.js';
import { nextFireAfter, type ScheduleDefinition } from '../schedule.js';
import { cronRemoveUndeclared, cronSaveMany, cronUndeclaredNames } from '../sql/cron.js';
import { jobTypeUpsertMany } from '../sql/job-types.js';
import { subscriptionUpsertMany } from '../sql/subscriptions.js';
import { workerRegister } from '../sql/workers.js';
import { SLUICE_VERSION } from '../version.js';
import type { ResolvedWorkerOptions, Subscription } from './options.js';

/** Everything start() writes before claiming, in this order. */
export async function declareWorker(
  db: Queryable,
  o: ResolvedWorkerOptions,
  worker: { id: string; queues: string[]; concurrency: number },
  logger: Logger,
): Promise<void> {
  await declareJobs(db, [...o.registrations.values()].map((r) => r.job), o.subscriptions);
  await workerRegister(db, {
    id: worker.id,
    service: o.service,
    host: hostname(),
    pid: process.pid,
    queues: worker.queues,
    concurrency: worker.concurrency,
    version: SLUICE_VERSION,
  });
  await declareSchedules(db, o.schedules, o.service, o.undeclaredSchedules, logger);
}

export async function declareJobs(db: Queryable, jobs: JobDefinition[], subscriptions: Subscription[]): Promise<void> {
  const all = new Map(jobs.map((j) => [j.name, j]));
  for (const s of subscriptions) all.set(s.job.name, s.job);
  await jobTypeUpsertMany(db, [...all.values()]);
  await subscriptionUpsertMany(db, subscriptions.map((s) => ({ topic: s.topic, jobName: s.job.name })));
}

/**
 * Upserts code schedules without resetting their history, owned by this
 * worker's service; reports or removes the ones this service declared
 * earlier and no longer does. Other services' schedules are not its business.
 */
export async function declareSchedules(
  db: Queryable,
  schedules: ScheduleDefinition[],
  service: string | null,
  undeclared: 'report' | 'remove',
  logger: Logger,
): Promise<void> {
  const now = new Date();
  await cronSaveMany(db, schedules, schedules.map((s) => nextFireAfter(s.cron, s.timezone, now)), { in: 'code', service }).catch(
    (err: unknown) => {
      throw translateDbError(err);
    },
  );
  const declared = schedules.map((s) => s.name);
  if (undeclared === 'remove') {
    const removed = await cronRemoveUndeclared(db, service, declared);
    if (removed.length) logger.info({ schedules: removed, service }, 'removed schedules this service no longer declares');
    return;
  }
  const stale = await cronUndeclaredNames(db, service, declared);
  if (stale.length) logger.warn({ schedules: stale, service }, 'schedules this service declared in code earlier are not declared by this worker');
}
