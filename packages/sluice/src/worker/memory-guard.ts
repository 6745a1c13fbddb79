// Pauses claiming while the process's resident memory is above maxRssBytes,
// logging once each way rather than on every check.
import type { Logger } from 'pino';

export class MemoryGuard {
  private overMemory = false;

  constructor(
    private readonly limit: number | null,
    private readonly logger: Logger,
  ) {}

  exceeded(): boolean {
    const limit = this.limit;
    if (limit === null) return false;
    const rss = process.memoryUsage.rss();
    const over = rss > limit;
    if (over !== this.overMemory) {
      this.overMemory = over;
      if (over) this.logger.warn({ rssBytes: rss, maxRssBytes: limit }, 'memory above maxRssBytes: not claiming new jobs');
      else this.logger.info({ rssBytes: rss, maxRssBytes: limit }, 'memory back under maxRssBytes: claiming again');
    }
    return over;
  }
}
