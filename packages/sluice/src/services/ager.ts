// Priority aging for queues that opt in (agingAfterMs): see sluice.age_priorities.
// Cheap when no queue ages: the function then reads no job (see its comment).
// While it finds jobs to age it runs every busyIntervalMs (each round ages a
// job by one step at most); when it finds none, it waits idleIntervalMs.
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
    const aged = await jobAgePriorities(this.db, AGE_BATCH);
    if (aged >= AGE_BATCH) return 0;
    return aged > 0 ? this.intervals.busyMs : this.intervals.idleMs;
  }
}
