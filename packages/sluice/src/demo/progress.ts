// A progress bar for the throughput run. On a terminal it redraws one line in
// place; piped into a file or CI log it prints a line every fifth of the way,
// because carriage returns there turn into one unreadable line.

const BAR_WIDTH = 32;
const REDRAW_EVERY_MS = 50;

export class ProgressBar {
  private startedAt = performance.now();
  private updatedAt = this.startedAt;
  private lastDrawAt = 0;
  private nextMilestone: number;
  private done = 0;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {
    this.nextMilestone = total / 5;
  }

  /** Restarts the clock the rate is measured from, e.g. once the work is actually available. */
  start(): void {
    this.startedAt = performance.now();
    this.updatedAt = this.startedAt;
  }

  update(done: number): void {
    this.done = done;
    this.updatedAt = performance.now();
    if (this.out.isTTY) {
      if (this.updatedAt - this.lastDrawAt < REDRAW_EVERY_MS && done < this.total) return;
      this.lastDrawAt = this.updatedAt;
      this.out.write(`\r${this.render()}\x1b[K`);
    } else {
      while (done >= this.nextMilestone && this.nextMilestone <= this.total) {
        this.out.write(`${this.render()}\n`);
        this.nextMilestone += this.total / 5;
      }
    }
  }

  /** Ends the bar's line so the next output starts on a fresh one. */
  finish(): void {
    if (this.out.isTTY) this.out.write(`\r${this.render()}\x1b[K\n`);
  }

  private render(): string {
    const fraction = this.total === 0 ? 1 : Math.min(this.done / this.total, 1);
    const filled = Math.round(fraction * BAR_WIDTH);
    // The rate as of the last completion, and only once there is enough of a
    // sample for it to mean something.
    const seconds = (this.updatedAt - this.startedAt) / 1000;
    const rate = seconds >= 0.1 ? `${Math.round(this.done / seconds).toLocaleString('en-US')} jobs/s` : '';
    const count = `${this.done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')}`;
    return `  [${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${count} ${String(Math.round(fraction * 100)).padStart(3)}%  ${rate}`.trimEnd();
  }
}
