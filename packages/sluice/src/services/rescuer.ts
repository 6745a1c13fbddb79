// Rescues jobs of dead workers: within seconds when the worker's process
// ended (its database session ended with it), else once their leases lapse.
// The maintenance leader runs it; SKIP LOCKED in sluice.rescue_expired keeps
// two rescuers from colliding during a handover. Once a minute it also forgets
// workers long gone, and then removes the code schedules only they declared
// (where their service removes undeclared ones).
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { jobRescueExpired } from '../sql/jobs.js';
import { workerReap } from '../sql/workers.js';
import { removeUndeclaredSchedules } from '../undeclared-schedules.js';
import { Service } from './service.js';

export interface RescuerOptions {
  intervalMs: number;
  batchSize: number;
  forgetAfterMs: number;
  /** How long a worker's session must have been gone, with no beat since, before its leases are ended. */
  lostSessionGraceMs: number;
}

/** Forgetting workers gone for an hour needs no finer cadence than this. */
const REAP_INTERVAL_MS = 60_000;

export class Rescuer extends Service {
  private reapedAt = 0;
  private removalOwed = false;

  constructor(
    private readonly db: Queryable,
    private readonly options: RescuerOptions,
    logger: Logger,
  ) {
    super('rescuer', logger);
  }

  protected async tick(): Promise<number> {
    const outcomes = await jobRescueExpired(this.db, this.options.batchSize, this.options.lostSessionGraceMs);
    if (outcomes.size > 0) {
      const dead = [...outcomes.values()].filter((o) => o === 'dead').length;
      this.logger.warn({ rescued: outcomes.size - dead, dead, jobIds: [...outcomes.keys()].slice(0, 20) }, 'rescued jobs of a dead worker');
    }
    if (Date.now() - this.reapedAt >= REAP_INTERVAL_MS) {
      // A worker forgotten no longer keeps the schedules only it declared;
      // a removal the busy schedules put off is owed until it runs.
      if ((await workerReap(this.db, this.options.forgetAfterMs)) > 0) this.removalOwed = true;
      this.reapedAt = Date.now();
      if (this.removalOwed) this.removalOwed = !(await removeUndeclaredSchedules(this.db, this.logger));
    }
    return outcomes.size >= this.options.batchSize ? 0 : this.options.intervalMs;
  }
}
