// Tells the cluster this worker is alive and keeps its jobs' leases fresh.
// How it beats (and whether the beat also bids for leadership) is the
// caller's: see Leadership.beat.
import type { Logger } from 'pino';
import { Service } from '../services/service.js';

export class Heartbeat extends Service {
  constructor(
    private readonly beat: () => Promise<void>,
    private readonly nextBeatMs: () => number,
    logger: Logger,
  ) {
    super('heartbeat', logger);
  }

  protected async tick(): Promise<number> {
    await this.beat();
    return this.nextBeatMs();
  }
}
