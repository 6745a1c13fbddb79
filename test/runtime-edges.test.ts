// The worker's runtime at its edges: retry delays past the exponential cap
// and of a fixed backoff longer than that cap, the leader's promoter facing a
// due job that another transaction holds locked, and limited queues, whose
// jobs must not wait in a worker's buffer.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Sluice, defineJob } from '../packages/sluice/src/index.js';
import { waitUntil, type TestDb } from './helpers/db.js';
import { recordingPool } from './helpers/recording-pool.js';
import { useSuite } from './helpers/suite.js';

const suite = useSuite({ pollIntervalMs: 100, heartbeatIntervalMs: 200, workerDeadAfterMs: 5_000, runScheduler: false });
let db: TestDb;
let sluice: Sluice;
beforeAll(() => {
  ({ db, sluice } = suite);
});
const worker = suite.startWorker;

describe('retry delay', () => {
  it('jitter still spreads retries once the exponential delay reaches maxMs, and stays under it', async () => {
    // 200 jobs failing their 20th attempt together, default policy (1 s doubling, 1 h cap, ±10%).
    const { rows } = await db.pool.query<{ distinct: string; min: string; max: string }>(
      `SELECT count(DISTINCT d) AS distinct, min(d) AS min, max(d) AS max
       FROM (SELECT sluice.retry_delay_ms(20, 'exponential', 1000, 2, 3600000, 0.1) AS d FROM generate_series(1, 200)) x`,
    );
    expect(Number(rows[0]!.distinct)).toBeGreaterThan(100);
    expect(Number(rows[0]!.max)).toBeLessThanOrEqual(3_600_000);
    expect(Number(rows[0]!.min)).toBeGreaterThanOrEqual(3_240_000);
  });

  it('a fixed backoff of 2 h schedules the retry 2 h later: the default 1 h cap is the exponential one', async () => {
    const job = defineJob({ name: 'edge.fixed', queue: 'edge-fixed', schema: z.object({}), maxAttempts: 3, backoff: { kind: 'fixed', baseMs: 7_200_000, jitter: 0 } });
    let ran = 0;
    await worker({ handlers: [job.handle(async () => { ran++; throw new Error('down'); })] }).start();
    const id = await sluice.enqueue(job, {});
    await waitUntil(async () => (await sluice.getJob(id)).state === 'scheduled', { what: 'retry scheduled' });
    const { rows } = await db.pool.query(`SELECT round(extract(epoch FROM run_at - now()))::int AS s FROM sluice.jobs WHERE id = $1`, [id]);
    expect(ran).toBe(1);
    expect(rows[0].s).toBeGreaterThan(7_000);
  });
});

describe('promoter', () => {
  it('does not spin while a due scheduled job is locked by another transaction', async () => {
    const job = defineJob({ name: 'edge.promote', queue: 'edge-promote', schema: z.object({}) });
    const other = defineJob({ name: 'edge.promote.other', queue: 'edge-promote-other', schema: z.object({}) });
    const id = await sluice.enqueue(job, {}, { delayMs: 60_000 });
    await db.pool.query(`UPDATE sluice.jobs SET run_at = now() - interval '1 s' WHERE id = $1`, [id]);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const { pool, sent } = recordingPool(db.url);
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM sluice.jobs WHERE id = $1 FOR UPDATE', [id]);
      const w = worker({ pool, handlers: [other.handle(async () => {})] });
      await w.start();
      await waitUntil(() => w.isLeader, { what: 'leader' });
      const promotions = () => sent.filter((s) => s === 'sluice_job_promote_due').length;
      const before = promotions();
      // A whole second, counted in statements sent, not timed: a promoter that waits even a
      // tenth of a second between rounds sends about 10.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(promotions() - before).toBeLessThan(50);
      await holder.query('ROLLBACK');
      // Let go, the job is promoted and runs.
      await waitUntil(async () => (await sluice.getJob(id)).state !== 'scheduled', { what: 'promoted once the lock is gone' });
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      await holder.end();
      await Promise.all(suite.workers.map((x) => x.stop()));
      await pool.end();
    }
  });
});

describe('limited queues and the prefetch buffer', () => {
  it('a queue with concurrency 2 runs 2 jobs at once when two workers of concurrency 1 serve it: none waits in a buffer holding a slot', async () => {
    const job = defineJob({ name: 'edge.slots', queue: 'edge-slots', schema: z.object({}) });
    await sluice.queues.configure('edge-slots', { concurrency: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started = new Map<string, number>();
    const handle = (name: string) => job.handle(async () => {
      started.set(name, (started.get(name) ?? 0) + 1);
      await gate;
    });
    await sluice.enqueueMany(job, [{}, {}, {}, {}]);
    const a = worker({ concurrency: 1, handlers: [handle('a')] });
    await a.start();
    await waitUntil(() => started.get('a') === 1, { what: 'the first worker runs a job' });
    const b = worker({ concurrency: 1, handlers: [handle('b')] });
    await b.start();
    try {
      await waitUntil(() => started.get('b') === 1, { what: 'the second worker runs the queue\'s second slot' });
      expect(a.load.buffered).toBe(0);
    } finally {
      release();
    }
  });

  it('a rate-limited queue does not start its jobs in a burst past the limit after a slow job', async () => {
    const job = defineJob({ name: 'edge.rate', queue: 'edge-rate', schema: z.object({ hold: z.boolean() }) });
    await db.pool.query('CREATE TABLE edge_starts (at timestamptz NOT NULL DEFAULT clock_timestamp())');
    await sluice.queues.configure('edge-rate', { rateLimit: { count: 2, intervalMs: 1_000 } });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await sluice.enqueueMany(job, [{ hold: true }, { hold: false }, { hold: false }, { hold: false }, { hold: false }, { hold: false }]);
    await worker({
      concurrency: 1,
      handlers: [job.handle(async (p) => {
        await db.pool.query('INSERT INTO edge_starts DEFAULT VALUES');
        if (p.hold) await gate;
      })],
    }).start();
    await waitUntil(async () => (await db.pool.query('SELECT 1 FROM edge_starts')).rowCount === 1, { what: 'the slow job started' });
    // While it runs, a worker that buffers would claim the others as the rate allows.
    await new Promise((r) => setTimeout(r, 2_500));
    release();
    await waitUntil(async () => (await db.pool.query('SELECT 1 FROM edge_starts')).rowCount === 6, { timeoutMs: 20_000, what: 'every job started' });
    // Starts by the database clock: no 900 ms holds more than the limit's 2.
    const { rows } = await db.pool.query<{ most: number }>(
      `SELECT max(n)::int AS most FROM (
         SELECT count(*) OVER (ORDER BY at RANGE BETWEEN CURRENT ROW AND interval '900 milliseconds' FOLLOWING) AS n FROM edge_starts) x`,
    );
    expect(rows[0]!.most).toBeLessThanOrEqual(2);
  });
});
