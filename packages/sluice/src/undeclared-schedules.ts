// Removing the code schedules no known worker of their service declares any
// more (sluice.remove_undeclared_schedules): at a worker's start and stop, and
// once a minute in the maintenance leader's rescuer, which also takes up what
// a start or stop had to leave.
import type { Logger } from 'pino';
import type { Queryable } from './executor.js';
import { cronRemoveUndeclared } from './sql/cron.js';

/** lock_timeout ran out (SQLSTATE 55P03). */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Removes them, of `service` only or of every service (undefined), and logs
 * what went. Resolves false when the schedules were busy (a scheduler firing
 * held them past the function's lock_timeout): nothing was removed, and the
 * caller tries again at its next occasion.
 */
export async function removeUndeclaredSchedules(db: Queryable, logger: Logger, service?: string | null): Promise<boolean> {
  let removed: { name: string; service: string | null }[];
  try {
    removed = await cronRemoveUndeclared(db, service);
  } catch (err) {
    if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
    logger.warn({ err, service }, 'could not remove undeclared schedules now (the schedules were busy); the maintenance leader tries again within a minute');
    return false;
  }
  if (removed.length === 0) return true;
  if (service === undefined) logger.info({ schedules: removed }, 'removed schedules that no known worker of their service declares any more');
  else logger.info({ schedules: removed.map((r) => r.name), service }, 'removed schedules this service no longer declares');
  return true;
}
