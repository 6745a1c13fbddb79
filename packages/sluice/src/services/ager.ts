// Priority aging for queues that opt in (agingAfterMs): see sluice.age_priorities.
// Cheap when no queue ages: the function then reads no job (see its comment).
// While it finds jobs to age it runs every busyMs (each round ages a job by
// one step at most). When it finds none it waits idleMs, or the shortest
// aging period of any queue when that is shorter (never less than busyMs):
// a job enqueued just after a round that found nothing is due its first step
// one period later, and a sleep of idleMs would hold it back that much more.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { jobAgePriorities } from '../sql/jobs.js';
import { Service } from './service.js';

const AGE_BATCH = 1_000;

export class Ager extends Service {
  constructor(
    private readonly db: Queryable,
    private readonly intervals: { busyMs: number; idleMs: number },
    logger: Logger,
  ) {
    super('ager', logger);
  }

  protected async tick(): Promise<number> {
    const { aged, shortestPeriodMs } = await jobAgePriorities(this.db, AGE_BATCH);
    if (aged >= AGE_BATCH) return 0;
    if (aged > 0) return this.intervals.busyMs;
    return Math.max(this.intervals.busyMs, Math.min(this.intervals.idleMs, shortestPeriodMs ?? this.intervals.idleMs));
  }
}
