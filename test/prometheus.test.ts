import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { DatabaseMetrics } from '../packages/sluice/src/prometheus/index.js';
import { METRICS_READ_MIN_INTERVAL_MS } from '../packages/sluice/src/prometheus/database-metrics.js';
import { createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { freePort } from './helpers/port.js';
import { recordingPool } from './helpers/recording-pool.js';

let db: TestDb;
let sluice: Sluice;

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
});
afterAll(async () => {
  await db.drop();
});

/** The value of one sample line, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Prometheus metrics', () => {
  it('database gauges carry queue, job name and state labels', async () => {
    await db.pool.query(`SELECT sluice.enqueue_many('p.job', '[1,2,3]'::jsonb, queue => 'prom')`);
    await db.pool.query(`SELECT sluice.enqueue('p.later', '{}', queue => 'prom', run_at => now() + interval '1 hour')`);
    // Shard 64: no backend's (enqueue counts into shard pid % 64, so any lower one may already exist this minute).
    await db.pool.query(`INSERT INTO sluice.metrics_minutely (queue, minute, shard, completed, failed, wait_ms_sum, wait_ms_max, run_ms_sum, run_ms_max)
                         VALUES ('prom', date_trunc('minute', now()), 64, 30, 10, 4000, 900, 2000, 300)`);
    await db.pool.query(`UPDATE sluice.queues SET alert_max_depth = 1 WHERE name = 'prom'`);
    const text = await new DatabaseMetrics(db.pool).metrics();
    expect(text).toContain('# TYPE sluice_jobs gauge');
    expect(sample(text, 'sluice_jobs{queue="prom",name="p.job",state="available"}')).toBe(3);
    expect(sample(text, 'sluice_jobs{queue="prom",name="p.later",state="scheduled"}')).toBe(1);
    expect(sample(text, 'sluice_queue_depth_estimated{queue="prom"}')).toBe(0);
    expect(sample(text, 'sluice_queue_paused{queue="prom"}')).toBe(0);
    expect(sample(text, 'sluice_queue_oldest_waiting_seconds{queue="prom"}')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'sluice_queue_error_rate{queue="prom"}')).toBeCloseTo(0.25, 6);
    expect(sample(text, 'sluice_queue_wait_seconds{queue="prom",stat="avg"}')).toBeCloseTo(0.1, 6);
    expect(sample(text, 'sluice_queue_wait_seconds{queue="prom",stat="max"}')).toBeCloseTo(0.9, 6);
    expect(sample(text, 'sluice_queue_run_seconds{queue="prom",stat="max"}')).toBeCloseTo(0.3, 6);
    const perSecond = sample(text, 'sluice_queue_jobs_per_second{queue="prom",event="completed",window="1m"}');
    expect(perSecond).toBeGreaterThan(30 / 120);
    expect(perSecond).toBeLessThanOrEqual(30 / 60);
    expect(sample(text, 'sluice_queue_jobs_per_second{queue="prom",event="enqueued",window="15m"}')).toBeGreaterThan(0);
    expect(sample(text, 'sluice_queue_alert{queue="prom",alert="depth"}')).toBe(1);
    expect(sample(text, 'sluice_queue_workers_alive{queue="prom"}')).toBe(0);
  });

  it('workers alive per queue honours workerDeadAfterMs, as the no_worker alert does (default 15 s)', async () => {
    await db.pool.query(`INSERT INTO sluice.queues (name, alert_no_worker) VALUES ('prom-beat', true)`);
    await db.pool.query(`INSERT INTO sluice.workers (id, host, pid, queues, concurrency, version, heartbeat_at)
                         VALUES ('w-prom-beat', 'h', 1, '{prom-beat}', 1, 't', now() - interval '20 seconds')`);
    try {
      const byDefault = await new DatabaseMetrics(db.pool).metrics();
      expect(sample(byDefault, 'sluice_queue_workers_alive{queue="prom-beat"}')).toBe(0);
      expect(sample(byDefault, 'sluice_queue_alert{queue="prom-beat",alert="no_worker"}')).toBe(1);
      const patient = await new DatabaseMetrics(db.pool, { workerDeadAfterMs: 60_000 }).metrics();
      expect(sample(patient, 'sluice_queue_workers_alive{queue="prom-beat"}')).toBe(1);
      expect(sample(patient, 'sluice_queue_alert{queue="prom-beat",alert="no_worker"}')).toBeUndefined();
    } finally {
      await db.pool.query(`DELETE FROM sluice.workers WHERE id = 'w-prom-beat'`);
    }
  });

  // The endpoint answers whoever reaches it. One database read queued per
  // scrape let a burst of requests keep a connection reading for hours after
  // it stopped; scrapes that arrive during a read now share the next one.
  it('a burst of concurrent scrapes costs at most two database reads, and each gets the gauges', async () => {
    const { pool, sent } = recordingPool(db.url);
    try {
      const metrics = new DatabaseMetrics(pool);
      await metrics.metrics();
      const oneRead = sent.length;
      expect(oneRead).toBeGreaterThan(0);
      const pages = await Promise.all(Array.from({ length: 50 }, () => metrics.metrics()));
      expect(sent.length - oneRead).toBeLessThanOrEqual(2 * oneRead);
      for (const page of pages) expect(page).toContain('sluice_queue_workers_alive');
    } finally {
      await pool.end();
    }
  });

  it('a client scraping in a loop is answered from the last read until a second has passed since it ended', async () => {
    const { pool, sent } = recordingPool(db.url);
    try {
      const metrics = new DatabaseMetrics(pool);
      await metrics.metrics();
      const oneRead = sent.length;
      const started = performance.now();
      let scrapes = 0;
      while (performance.now() - started < METRICS_READ_MIN_INTERVAL_MS / 2) {
        expect(await metrics.metrics()).toContain('sluice_queue_workers_alive');
        scrapes++;
      }
      expect(scrapes).toBeGreaterThan(10);
      expect(sent.length).toBe(oneRead);
      await new Promise((r) => setTimeout(r, METRICS_READ_MIN_INTERVAL_MS));
      await metrics.metrics();
      expect(sent.length).toBe(2 * oneRead);
    } finally {
      await pool.end();
    }
  });

  it('series of jobs that left are gone at the next scrape after the minimum interval', async () => {
    const metrics = new DatabaseMetrics(db.pool);
    await db.pool.query(`SELECT sluice.enqueue('gone.job', '{}', queue => 'gone')`);
    expect(sample(await metrics.metrics(), 'sluice_jobs{queue="gone",name="gone.job",state="available"}')).toBe(1);
    await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'gone'`);
    await new Promise((r) => setTimeout(r, METRICS_READ_MIN_INTERVAL_MS));
    expect(sample(await metrics.metrics(), 'sluice_jobs{queue="gone",name="gone.job",state="available"}')).toBeUndefined();
  });

  it('a worker with metricsPort serves /metrics with its own counters and the database gauges', async () => {
    const ok = defineJob({ name: 'prom.ok', queue: 'promw', schema: z.object({ n: z.number() }) });
    const bad = defineJob({ name: 'prom.bad', queue: 'promw', schema: z.object({}), maxAttempts: 1 });
    const port = await freePort();
    const worker = createWorker({
      connectionString: db.url,
      handlers: [ok.handle(async () => {}), bad.handle(async () => { throw new Error('no'); })],
      metricsPort: port,
      pollIntervalMs: 100,
    });
    await worker.start();
    try {
      await sluice.enqueueMany(ok, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      await sluice.enqueue(bad, {});
      const scrape = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const text = await waitUntil(async () => {
        const t = await scrape();
        // The database gauges are read per scrape; wait until one scrape shows both sides.
        return sample(t, 'sluice_worker_jobs_total{queue="promw",name="prom.ok",result="completed"}') === 3 &&
          sample(t, 'sluice_worker_jobs_total{queue="promw",name="prom.bad",result="dead"}') === 1 &&
          sample(t, 'sluice_jobs{queue="promw",name="prom.bad",state="dead"}') === 1
          ? t
          : null;
      }, { what: 'worker counters' });
      expect(sample(text, 'sluice_worker_jobs_running')).toBe(0);
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
      expect(sample(text, 'sluice_jobs{queue="promw",name="prom.bad",state="dead"}')).toBe(1);
      expect(sample(text, 'sluice_queue_workers_alive{queue="promw"}')).toBe(1);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      await worker.stop();
    }
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it('a worker without metricsPort opens no port', async () => {
    const job = defineJob({ name: 'prom.none', queue: 'promn', schema: z.object({}) });
    const port = await freePort();
    const worker = createWorker({ connectionString: db.url, handlers: [job.handle(async () => {})] });
    await worker.start();
    try {
      await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    } finally {
      await worker.stop();
    }
  });
});
