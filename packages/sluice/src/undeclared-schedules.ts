// What the code schedules become when the workers that declare them change
// (a deploy): the ones no known worker of their service declares any more are
// removed (sluice.remove_undeclared_schedules), and the ones whose stored
// definition none declares any more take the latest started declarer's
// (sluice.redeclare_schedules). At a worker's start (removal), at its stop,
// and once a minute in the maintenance leader's rescuer, which also takes up
// what a start or stop had to leave.
import type { Logger } from 'pino';
import type { Queryable } from './executor.js';
import { cronRedeclare, cronRemoveUndeclared, type ServiceSchedules } from './sql/cron.js';

/** lock_timeout ran out (SQLSTATE 55P03). */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Runs a settling step; null when the schedules were busy (a scheduler firing
 * held them past the function's lock_timeout): nothing changed, and the
 * caller tries again at its next occasion.
 */
async function unlessBusy(logger: Logger, what: string, service: string | null | undefined, step: () => Promise<ServiceSchedules>): Promise<ServiceSchedules | null> {
  try {
    return await step();
  } catch (err) {
    if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
    logger.warn({ err, service }, `could not ${what} now (the schedules were busy); the maintenance leader tries again within a minute`);
    return null;
  }
}

/**
 * Removes them, of `service` only or of every service (undefined), and logs
 * what went. Resolves false when the schedules were busy.
 */
export async function removeUndeclaredSchedules(db: Queryable, logger: Logger, service?: string | null): Promise<boolean> {
  const removed = await unlessBusy(logger, 'remove undeclared schedules', service, () => cronRemoveUndeclared(db, service));
  if (removed === null) return false;
  if (removed.length === 0) return true;
  if (service === undefined) logger.info({ schedules: removed }, 'removed schedules that no known worker of their service declares any more');
  else logger.info({ schedules: removed.map((r) => r.name), service }, 'removed schedules this service no longer declares');
  return true;
}

/**
 * After workers went (a stop, the leader forgetting dead ones): redeclares,
 * then removes, of `service` only or of every service (undefined). The
 * removal runs whatever became of the redeclaration; the first failure is
 * thrown at the end.
 */
export async function settleDeclaredSchedules(db: Queryable, logger: Logger, service?: string | null): Promise<void> {
  let failure: unknown;
  try {
    const redeclared = await unlessBusy(logger, 'redeclare schedules', service, () => cronRedeclare(db, service));
    if (redeclared?.length) {
      logger.info({ schedules: redeclared }, 'schedules no known worker declared as stored any more now have the definition of the last started worker that declares them');
    }
  } catch (err) {
    failure = err;
  }
  await removeUndeclaredSchedules(db, logger, service);
  if (failure !== undefined) throw failure;
}
