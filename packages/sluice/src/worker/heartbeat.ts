// Tells the cluster this worker is alive and keeps its jobs' leases fresh.
// How it beats (and whether the beat also bids for leadership) is the
// caller's: see Leadership.beat.
import type { Logger } from 'pino';
import { monotonicMs } from '../clock.js';
import { Service } from '../services/service.js';

export class Heartbeat extends Service {
  constructor(
    private readonly beat: () => Promise<void>,
    private readonly nextBeatMs: () => number,
    logger: Logger,
  ) {
    super('heartbeat', logger);
  }

  /**
   * The next beat is due an interval after this one began, not after it
   * ended: what a tick does after its beat (hand-backs, each bounded by the
   * beat's give-up time, a registration) or a slow beat would otherwise push
   * the next one past the leases it keeps, and a healthy worker's running
   * jobs be rescued and run again.
   */
  protected async tick(): Promise<number> {
    const began = monotonicMs();
    await this.beat();
    return Math.max(0, this.nextBeatMs() - (monotonicMs() - began));
  }
}
