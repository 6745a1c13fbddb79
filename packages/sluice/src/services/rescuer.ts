// Rescues jobs of dead workers within seconds: any live worker runs this, and
// SKIP LOCKED in sluice.rescue_expired keeps rescuers from colliding, so no
// leader is needed. It also forgets workers long gone.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { jobRescueExpired } from '../sql/jobs.js';
import { workerReap } from '../sql/workers.js';
import { Service } from './service.js';

export interface RescuerOptions {
  intervalMs: number;
  batchSize: number;
  forgetAfterMs: number;
}

export class Rescuer extends Service {
  constructor(
    private readonly db: Queryable,
    private readonly options: RescuerOptions,
    logger: Logger,
  ) {
    super('rescuer', logger);
  }

  protected async tick(): Promise<number> {
    const outcomes = await jobRescueExpired(this.db, this.options.batchSize);
    if (outcomes.size > 0) {
      const dead = [...outcomes.values()].filter((o) => o === 'dead').length;
      this.logger.warn({ rescued: outcomes.size - dead, dead, jobIds: [...outcomes.keys()].slice(0, 20) }, 'rescued jobs of a dead worker');
    }
    await workerReap(this.db, this.options.forgetAfterMs);
    return outcomes.size >= this.options.batchSize ? 0 : this.options.intervalMs;
  }
}
