// The lifecycle every background duty shares: start, a loop of ticks that
// each say how long to sleep, an early wake-up, and a stop that waits for the
// tick in flight.
import type { Logger } from 'pino';
import { sluiceLogger } from '../logger.js';

export abstract class Service {
  private running = false;
  private loop: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private wakeUp: (() => void) | null = null;
  private wokenEarly = false;

  protected readonly logger: Logger;

  constructor(
    readonly serviceName: string,
    logger: Logger,
  ) {
    this.logger = sluiceLogger(logger);
  }

  /** One round of work; returns milliseconds until the next round. */
  protected abstract tick(): Promise<number>;

  /** Milliseconds to wait after a failed tick. */
  protected errorDelayMs(): number {
    return 1_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Runs the next tick now instead of after its sleep. */
  wake(): void {
    this.wokenEarly = true;
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    this.loop = null;
  }

  get isRunning(): boolean {
    return this.running;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let delayMs: number;
      this.wokenEarly = false;
      try {
        delayMs = await this.tick();
      } catch (err) {
        this.logger.warn({ err, service: this.serviceName }, 'background service tick failed');
        delayMs = this.errorDelayMs();
      }
      if (!this.running) break;
      if (this.wokenEarly) continue;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        this.timer = setTimeout(resolve, Math.max(0, delayMs));
      });
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.wakeUp = null;
    }
  }
}
