// Rescues jobs of dead workers: within seconds when the worker's process
// ended (its database session ended with it), else once their leases lapse.
// The maintenance leader runs it; SKIP LOCKED in sluice.rescue_expired keeps
// two rescuers from colliding during a handover. Once a minute it also forgets
// workers long gone, and then removes the code schedules no known worker
// declares (where their service removes undeclared ones): those only the
// forgotten declared, and those a worker's start or stop could not remove
// because the scheduler held them (a first read that finds nothing takes no
// lock, so the round costs one read).
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { jobRescueExpired } from '../sql/jobs.js';
import { workerReap } from '../sql/workers.js';
import { settleDeclaredSchedules } from '../undeclared-schedules.js';
import { Service } from './service.js';
import { monotonicMs } from '../clock.js';

export interface RescuerOptions {
  intervalMs: number;
  batchSize: number;
  forgetAfterMs: number;
  /** How often it forgets workers and removes undeclared schedules (the first time one interval after it starts). */
  reapIntervalMs: number;
  /** How long a worker's session must have been gone, with no beat since, before its leases are ended. */
  lostSessionGraceMs: number;
}

export class Rescuer extends Service {
  private reapedAt = 0;

  constructor(
    private readonly db: Queryable,
    private readonly options: RescuerOptions,
    logger: Logger,
  ) {
    super('rescuer', logger);
  }

  /**
   * The first round forgets nothing: after the database was out of reach for
   * an hour, every worker's last beat is that old, and a new leader reaping at
   * once would forget the live ones that had not beaten again yet (and remove
   * the schedules only they declare). Within a round every live one has.
   */
  override start(): void {
    if (!this.isRunning) this.reapedAt = monotonicMs();
    super.start();
  }

  protected async tick(): Promise<number> {
    const outcomes = await jobRescueExpired(this.db, this.options.batchSize, this.options.lostSessionGraceMs);
    if (outcomes.size > 0) {
      const dead = [...outcomes.values()].filter((o) => o === 'dead').length;
      this.logger.warn({ rescued: outcomes.size - dead, dead, jobIds: [...outcomes.keys()].slice(0, 20) }, 'rescued jobs of a dead worker');
    }
    if (monotonicMs() - this.reapedAt >= this.options.reapIntervalMs) {
      await workerReap(this.db, this.options.forgetAfterMs);
      this.reapedAt = monotonicMs();
      await settleDeclaredSchedules(this.db, this.logger);
    }
    return outcomes.size >= this.options.batchSize ? 0 : this.options.intervalMs;
  }
}
