// Database-wide gauges for Prometheus, read from the sluice views at scrape
// time: depth by queue, job name and state, oldest waiting age, workers
// alive, per-second rates over 1/5/15 minutes, error rate, latency, alerts.
// Every process exposing them shows the same values: aggregate with max().
import type { Gauge, Registry } from 'prom-client';
import { monotonicMs } from '../clock.js';
import type { Queryable } from '../executor.js';
import { promClient } from '../optional-deps.js';
import { alertListActive } from '../sql/alerts.js';
import { jobDepth, queueEventRates, queueLatency, queueStatsAll } from '../sql/metrics.js';

/** Tables with fewer rows than this are counted exactly; larger ones are estimated. */
export const EXACT_COUNT_BELOW_DEFAULT = 100_000;
/**
 * Scrapes within this long of the end of the last read are answered from it.
 * Prometheus scrapes every 15 s or more; the endpoint has no authentication,
 * and a client scraping in a loop kept a read of five queries running back to
 * back on the pool the worker claims with.
 */
export const METRICS_READ_MIN_INTERVAL_MS = 1_000;
/** A worker silent this long is not counted alive. Matches WORKER_DEAD_AFTER_MS_DEFAULT. */
export const METRICS_WORKER_DEAD_AFTER_MS_DEFAULT = 15_000;

export interface DatabaseMetricsOptions {
  /** Where the gauges are registered. Default: a new Registry. */
  registry?: Registry;
  /** Row count under which depth is counted exactly. Default 100,000. */
  exactCountBelow?: number;
  /** Heartbeat age, in ms, after which a worker is not alive. Default 15,000. */
  workerDeadAfterMs?: number;
}

export class DatabaseMetrics {
  readonly registry: Registry;
  private readonly exactCountBelow: number;
  private readonly workerDeadAfterMs: number;
  /** The read running (or the last one). */
  private running: Promise<void> = Promise.resolve();
  /** The read that starts when the running one ends, shared by every call meanwhile. */
  private queued: Promise<void> | null = null;
  /** When the last read that succeeded ended (monotonic ms). */
  private readAt = -Infinity;
  private readonly jobs: Gauge<'queue' | 'name' | 'state'>;
  private readonly estimated: Gauge<'queue'>;
  private readonly paused: Gauge<'queue'>;
  private readonly oldest: Gauge<'queue'>;
  private readonly workers: Gauge<'queue'>;
  private readonly rates: Gauge<'queue' | 'event' | 'window'>;
  private readonly errorRate: Gauge<'queue'>;
  private readonly wait: Gauge<'queue' | 'stat'>;
  private readonly run: Gauge<'queue' | 'stat'>;
  private readonly alerts: Gauge<'queue' | 'alert'>;

  constructor(
    private readonly db: Queryable,
    options: DatabaseMetricsOptions = {},
  ) {
    const { Gauge, Registry } = promClient();
    this.registry = options.registry ?? new Registry();
    this.exactCountBelow = options.exactCountBelow ?? EXACT_COUNT_BELOW_DEFAULT;
    this.workerDeadAfterMs = options.workerDeadAfterMs ?? METRICS_WORKER_DEAD_AFTER_MS_DEFAULT;
    const registers = [this.registry];
    this.jobs = new Gauge({ name: 'sluice_jobs', help: 'Jobs by queue, job name and state (estimated from planner statistics on large tables)', labelNames: ['queue', 'name', 'state'], registers });
    this.estimated = new Gauge({ name: 'sluice_queue_depth_estimated', help: '1 when the queue depth comes from planner statistics rather than a count', labelNames: ['queue'], registers });
    this.paused = new Gauge({ name: 'sluice_queue_paused', help: '1 when the queue is paused', labelNames: ['queue'], registers });
    this.oldest = new Gauge({ name: 'sluice_queue_oldest_waiting_seconds', help: 'How long the longest-waiting due job of the queue has waited', labelNames: ['queue'], registers });
    this.workers = new Gauge({ name: 'sluice_queue_workers_alive', help: 'Workers with a recent heartbeat that serve the queue', labelNames: ['queue'], registers });
    this.rates = new Gauge({ name: 'sluice_queue_jobs_per_second', help: 'Job events per second over the window (enqueued, completed, failed, retried, dead, cancelled)', labelNames: ['queue', 'event', 'window'], registers });
    this.errorRate = new Gauge({ name: 'sluice_queue_error_rate', help: 'Failed share of finished attempts over the last 5 minutes (0..1)', labelNames: ['queue'], registers });
    this.wait = new Gauge({ name: 'sluice_queue_wait_seconds', help: 'Time from due to started over the last 5 minutes (avg, max from metrics; p50, p95 from recent history)', labelNames: ['queue', 'stat'], registers });
    this.run = new Gauge({ name: 'sluice_queue_run_seconds', help: 'Handler run time over the last 5 minutes (avg, max from metrics; p50, p95 from recent history)', labelNames: ['queue', 'stat'], registers });
    this.alerts = new Gauge({ name: 'sluice_queue_alert', help: 'Active alerts (1) by queue and kind: depth, wait, error_rate, no_worker', labelNames: ['queue', 'alert'], registers });
  }

  /**
   * Reads the database and sets every gauge. Every call that arrives while a
   * read runs shares the one read that follows it: the endpoint answers
   * anyone who can reach it, and one read queued per request let a burst of
   * scrapes keep a connection busy for hours after it stopped. A call within
   * METRICS_READ_MIN_INTERVAL_MS of the last read's end is answered by it.
   */
  refresh(): Promise<void> {
    if (this.queued) return this.queued;
    if (monotonicMs() - this.readAt < METRICS_READ_MIN_INTERVAL_MS) return this.running;
    const queued: Promise<void> = this.running
      .catch(() => {})
      .then(() => {
        this.queued = null;
        this.running = this.read();
        return this.running;
      });
    this.queued = queued;
    return queued;
  }

  /** Refreshes, then renders the registry in the Prometheus text format. */
  async metrics(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  private async read(): Promise<void> {
    const [depth, stats, rates, latency, active] = await Promise.all([
      jobDepth(this.db, this.exactCountBelow),
      queueStatsAll(this.db, null, this.workerDeadAfterMs),
      queueEventRates(this.db),
      queueLatency(this.db),
      alertListActive(this.db, this.workerDeadAfterMs),
    ]);
    this.readAt = monotonicMs();
    for (const g of [this.jobs, this.estimated, this.paused, this.oldest, this.workers, this.rates, this.errorRate, this.wait, this.run, this.alerts]) {
      g.reset();
    }
    for (const d of depth) this.jobs.set({ queue: d.queue, name: d.name, state: d.state }, d.jobs);
    for (const s of stats) {
      this.estimated.set({ queue: s.queue }, s.estimated ? 1 : 0);
      this.paused.set({ queue: s.queue }, s.paused ? 1 : 0);
      this.oldest.set({ queue: s.queue }, s.oldestWaitSeconds ?? 0);
      this.workers.set({ queue: s.queue }, s.workersAlive);
      if (s.errorRate5m !== null) this.errorRate.set({ queue: s.queue }, s.errorRate5m);
      if (s.waitMsAvg5m !== null) this.wait.set({ queue: s.queue, stat: 'avg' }, s.waitMsAvg5m / 1000);
      if (s.runMsAvg5m !== null) this.run.set({ queue: s.queue, stat: 'avg' }, s.runMsAvg5m / 1000);
      if (s.waitMsMax5m !== null) this.wait.set({ queue: s.queue, stat: 'max' }, s.waitMsMax5m / 1000);
      if (s.runMsMax5m !== null) this.run.set({ queue: s.queue, stat: 'max' }, s.runMsMax5m / 1000);
    }
    for (const r of rates) this.rates.set({ queue: r.queue, event: r.event, window: r.window }, r.perSecond);
    for (const l of latency) {
      if (l.waitMsP50 !== null) this.wait.set({ queue: l.queue, stat: 'p50' }, l.waitMsP50 / 1000);
      if (l.waitMsP95 !== null) this.wait.set({ queue: l.queue, stat: 'p95' }, l.waitMsP95 / 1000);
      if (l.runMsP50 !== null) this.run.set({ queue: l.queue, stat: 'p50' }, l.runMsP50 / 1000);
      if (l.runMsP95 !== null) this.run.set({ queue: l.queue, stat: 'p95' }, l.runMsP95 / 1000);
    }
    for (const a of active) this.alerts.set({ queue: a.queue, alert: a.alert }, 1);
  }
}
