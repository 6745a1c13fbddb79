// What a worker writes to the database when it starts: its job types (so SQL
// enqueue uses the same defaults), its cron schedules and its subscriptions.
import type { Logger } from 'pino';
import { translateDbError } from '../db-errors.js';
import type { Queryable } from '../executor.js';
import type { JobDefinition } from '../job.js';
import { nextFireAfter, type ScheduleDefinition } from '../schedule.js';
import { cronCodeDeclaredNames, cronRemove, cronSaveMany } from '../sql/cron.js';
import { jobTypeUpsertMany } from '../sql/job-types.js';
import { subscriptionUpsertMany } from '../sql/subscriptions.js';
import type { Subscription } from './options.js';

export async function declareJobs(db: Queryable, jobs: JobDefinition[], subscriptions: Subscription[]): Promise<void> {
  const all = new Map(jobs.map((j) => [j.name, j]));
  for (const s of subscriptions) all.set(s.job.name, s.job);
  await jobTypeUpsertMany(db, [...all.values()]);
  await subscriptionUpsertMany(db, subscriptions.map((s) => ({ topic: s.topic, jobName: s.job.name })));
}

/** Upserts code schedules without resetting their history; reports or removes ones no longer declared. */
export async function declareSchedules(
  db: Queryable,
  schedules: ScheduleDefinition[],
  undeclared: 'report' | 'remove',
  logger: Logger,
): Promise<void> {
  const now = new Date();
  await cronSaveMany(db, schedules, schedules.map((s) => nextFireAfter(s.cron, s.timezone, now)), 'code').catch((err: unknown) => {
    throw translateDbError(err);
  });
  const declared = new Set(schedules.map((s) => s.name));
  const stale = (await cronCodeDeclaredNames(db)).filter((n) => !declared.has(n));
  if (stale.length === 0) return;
  if (undeclared === 'remove') {
    for (const name of stale) await cronRemove(db, name);
    logger.info({ schedules: stale }, 'removed schedules no longer declared in code');
  } else {
    logger.warn({ schedules: stale }, 'schedules declared in code earlier are not declared by this worker');
  }
}
