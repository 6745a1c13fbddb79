// What a worker writes to the database when it starts: its job types (so SQL
// enqueue uses the same defaults), its row in sluice.workers, its cron
// schedules and its subscriptions.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { translateDbError } from '../db-errors.js';
import type { Queryable } from '../executor.js';
import type { JobDefinition } from '../job.js';
import { nextFireAfter, type ScheduleDefinition } from '../schedule.js';
import { cronInsertMissing, cronSaveMany, cronUndeclaredNames, declaredSchedule } from '../sql/cron.js';
import { databaseNow } from '../sql/session.js';
import { jobTypeUpsertMany } from '../sql/job-types.js';
import { subscriptionUpsertMany } from '../sql/subscriptions.js';
import { workerRegister } from '../sql/workers.js';
import { removeUndeclaredSchedules } from '../undeclared-schedules.js';
import { SLUICE_VERSION } from '../version.js';
import type { ResolvedWorkerOptions, Subscription } from './options.js';

/** Everything start() writes before claiming, in this order; returns the worker row's started_at. */
export async function declareWorker(
  db: Queryable,
  o: ResolvedWorkerOptions,
  worker: { id: string; queues: string[]; concurrency: number },
  logger: Logger,
): Promise<string> {
  await declareJobs(db, [...o.registrations.values()].map((r) => r.job), o.subscriptions);
  const startedAt = await registerWorker(db, o, worker, null);
  await declareSchedules(db, o, logger, startedAt);
  return startedAt;
}

/**
 * This worker's row in sluice.workers, with what it declares: written at
 * start, and again when a beat finds the row gone (the leader forgot the
 * worker after a long silence, a database out of reach for an hour, say),
 * then with the started_at the first time returned (null the first time).
 */
export async function registerWorker(
  db: Queryable,
  o: Pick<ResolvedWorkerOptions, 'schedules' | 'service' | 'undeclaredSchedules'>,
  worker: { id: string; queues: string[]; concurrency: number },
  startedAt: string | null,
): Promise<string> {
  const row = {
    id: worker.id,
    service: o.service,
    host: hostname(),
    pid: process.pid,
    queues: worker.queues,
    concurrency: worker.concurrency,
    version: SLUICE_VERSION,
    schedules: o.schedules.map((s) => s.name),
    removesUndeclaredSchedules: o.undeclaredSchedules === 'remove',
    scheduleDefinitions: o.schedules.map(declaredSchedule),
  };
  return workerRegister(db, row, startedAt);
}

export async function declareJobs(db: Queryable, jobs: JobDefinition[], subscriptions: Subscription[]): Promise<void> {
  const all = new Map(jobs.map((j) => [j.name, j]));
  for (const s of subscriptions) all.set(s.job.name, s.job);
  await jobTypeUpsertMany(db, [...all.values()]);
  await subscriptionUpsertMany(db, subscriptions.map((s) => ({ topic: s.topic, jobName: s.job.name })));
}

/**
 * After the leader forgot this worker: the schedules it declares that the
 * forgetting round removed (those only it declared) come back; the others
 * stay as the workers known meanwhile, started later, left them.
 */
export async function restoreSchedules(db: Queryable, o: Pick<ResolvedWorkerOptions, 'schedules' | 'service'>): Promise<void> {
  await cronInsertMissing(db, o.schedules, await nextFiresFromNow(db, o.schedules), o.service).catch((err: unknown) => {
    throw translateDbError(err);
  });
}

async function nextFiresFromNow(db: Queryable, schedules: readonly ScheduleDefinition[]): Promise<Date[]> {
  if (schedules.length === 0) return [];
  const now = await databaseNow(db);
  return schedules.map((s) => nextFireAfter(s.cron, s.timezone, now));
}

/**
 * Upserts code schedules without resetting their history, owned by this
 * worker's service; reports or removes the ones no known worker of this
 * service declares (this one registered first, so its own count). Other
 * services' schedules are not its business; in a rolling deploy, neither are
 * the ones the other version's pods still declare.
 */
export async function declareSchedules(
  db: Queryable,
  o: Pick<ResolvedWorkerOptions, 'schedules' | 'service' | 'undeclaredSchedules'>,
  logger: Logger,
  /** This worker's started_at, as registered: a worker of the service started later keeps its definitions. */
  startedAt: string,
): Promise<void> {
  const { schedules, service } = o;
  await cronSaveMany(db, schedules, await nextFiresFromNow(db, schedules), { in: 'code', service, startedAt }).catch(
    (err: unknown) => {
      throw translateDbError(err);
    },
  );
  if (o.undeclaredSchedules === 'remove') {
    await removeUndeclaredSchedules(db, logger, service);
    return;
  }
  const stale = await cronUndeclaredNames(db, service);
  if (stale.length) logger.warn({ schedules: stale, service }, 'schedules this service declared in code earlier are declared by none of its workers');
}
