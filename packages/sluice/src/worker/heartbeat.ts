// Tells the cluster this worker is alive and keeps its jobs' leases fresh.
import type { Logger } from 'pino';
import type { Queryable } from '../executor.js';
import { Service } from '../services/service.js';
import { workerHeartbeat } from '../sql/workers.js';

export class Heartbeat extends Service {
  constructor(
    private readonly db: Queryable,
    private readonly workerId: string,
    private readonly intervalMs: number,
    private readonly leaseMs: number,
    private readonly heldIds: () => number[],
    logger: Logger,
  ) {
    super('heartbeat', logger);
  }

  protected async tick(): Promise<number> {
    await workerHeartbeat(this.db, this.workerId, this.leaseMs, this.heldIds());
    return this.intervalMs;
  }
}
