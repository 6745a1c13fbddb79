// The database-wide duties a worker runs when it leads: promoter, rescuer,
// ager, cron scheduler, and the operations ones (retention, alerts).
import type { Logger } from 'pino';
import { PROMOTE_BATCH_SIZE_DEFAULT, RESCUE_BATCH_SIZE_DEFAULT, WORKER_FORGET_AFTER_MS_DEFAULT, WORKER_REAP_INTERVAL_MS_DEFAULT } from '../config.js';
import { MISFIRE_GRACE_MS_DEFAULT } from '../schedule.js';
import { Ager } from '../services/ager.js';
import { Promoter } from '../services/promoter.js';
import { Rescuer } from '../services/rescuer.js';
import { Scheduler } from '../services/scheduler.js';
import type { Service } from '../services/service.js';
import type { DutyDb } from '../silent-connections.js';
import type { ResolvedWorkerOptions } from './options.js';

/**
 * Longest sleep of the leader's promoter and scheduler when notifications
 * reach it: enqueues, retries and schedule changes announce themselves, so
 * this only bounds how late a change made without one (a plain SQL insert) is
 * seen.
 */
export const LEADER_MAX_SLEEP_MS_DEFAULT = 30_000;
/** How often the leader looks for jobs to age while it finds none (it ages every pollIntervalMs while it does). */
const AGE_IDLE_INTERVAL_MS = 10_000;
/**
 * The rescuer's longest sleep. A worker whose process died is found at the
 * next round and its jobs are rescued at the first round LOST_SESSION_GRACE_MS
 * later: about three seconds after the death, against workerDeadAfterMs (the
 * lease) and a round for a worker that only stopped beating. Costs the leader
 * one transaction a second.
 */
const RESCUE_INTERVAL_MS_MAX = 1_000;
/**
 * A worker's LISTEN session must have been gone this long, with no beat
 * since, before the rescuer ends its leases (jobs/rescue-expired.sql): a live
 * worker whose session was cut reconnects after 100 ms and beats at once.
 */
export const LOST_SESSION_GRACE_MS = 2_000;

export interface Duties {
  all: Service[];
  promoter: Promoter;
  scheduler: Scheduler | null;
}

/** Every duty's statements are given up on a silent connection (DutyDb, worker/give-up.ts). */
export function createDuties(
  duty: DutyDb,
  o: ResolvedWorkerOptions,
  notified: boolean,
  operations: Service[],
  logger: Logger,
): Duties {
  // Without notifications the promoter and scheduler fall back to the poll interval.
  const maxSleepMs = notified ? LEADER_MAX_SLEEP_MS_DEFAULT : o.pollIntervalMs;
  const scheduler = o.runScheduler ? new Scheduler(duty, { maxSleepMs, misfireGraceMs: MISFIRE_GRACE_MS_DEFAULT }, logger) : null;
  const promoter = new Promoter(duty.db, { batchSize: PROMOTE_BATCH_SIZE_DEFAULT, maxSleepMs }, logger);
  const rescuer = new Rescuer(
    duty.db,
    {
      intervalMs: Math.max(100, Math.min(RESCUE_INTERVAL_MS_MAX, Math.floor(o.workerDeadAfterMs / 3))),
      batchSize: RESCUE_BATCH_SIZE_DEFAULT,
      forgetAfterMs: WORKER_FORGET_AFTER_MS_DEFAULT,
      reapIntervalMs: WORKER_REAP_INTERVAL_MS_DEFAULT,
      lostSessionGraceMs: LOST_SESSION_GRACE_MS,
    },
    logger,
  );
  const all: Service[] = [promoter, rescuer, new Ager(duty.db, { busyMs: o.pollIntervalMs, idleMs: notified ? AGE_IDLE_INTERVAL_MS : o.pollIntervalMs }, logger), ...operations];
  if (scheduler) all.push(scheduler);
  return { all, promoter, scheduler };
}
