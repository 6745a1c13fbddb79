// Priority aging for queues that opt in (agingAfterMs): see sluice.age_priorities.
// Cheap when no queue ages: the statement finds nothing through the queues join.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { jobAgePriorities } from '../sql/jobs.js';
import { Service } from './service.js';

const AGE_BATCH = 1_000;

export class Ager extends Service {
  constructor(
    private readonly db: Queryable,
    private readonly intervalMs: number,
    logger: Logger,
  ) {
    super('ager', logger);
  }

  protected async tick(): Promise<number> {
    const aged = await jobAgePriorities(this.db, AGE_BATCH);
    return aged >= AGE_BATCH ? 0 : this.intervalMs;
  }
}
