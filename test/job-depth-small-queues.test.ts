// Depth above the exact threshold: a queue that the planner's statistics do
// not list (a few jobs beside a huge backlog) is still reported, counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobDepth, queueStatsAll } from '../packages/sluice/src/admin.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { withPlans } from './helpers/plans.js';

let db: TestDb;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db.drop();
});

const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);

/** Dead jobs of one queue and name, as sluice.fail leaves them. */
async function dead(queue: string, name: string, n: number): Promise<void> {
  await q(
    `INSERT INTO sluice.dead_jobs (id, queue, name, payload, priority, attempt, max_attempts, backoff_kind, backoff_base_ms,
       backoff_factor, backoff_max_ms, backoff_jitter, reason, created_at, run_at)
     SELECT nextval('sluice.jobs_id_seq'), $1, $2, '{}', 0, 1, 1, 'fixed', 0, 1, 0, 0, 'exhausted', now(), now()
     FROM generate_series(1, $3::integer)`,
    [queue, name, n],
  );
}

/**
 * ANALYZE with the statistics lists cut to their most common entry. A table
 * this small is sampled whole, so every combination would be listed; on a
 * table of millions of rows the sample leaves out a queue of a few jobs.
 */
async function analyzeKeepingTopCombination(): Promise<void> {
  await q('ALTER STATISTICS sluice.jobs_queue_name_state_stats SET STATISTICS 1');
  await q('ALTER STATISTICS sluice.dead_jobs_queue_name_stats SET STATISTICS 1');
  await q('ANALYZE sluice.jobs');
  await q('ANALYZE sluice.dead_jobs');
}

const row = (queue: string, name: string, state: string, jobs: number) => ({ queue, name, state, jobs, estimated: false });

describe('job depth above the exact threshold', () => {
  beforeAll(async () => {
    await q(`SELECT sluice.enqueue_many('big.work', (SELECT jsonb_agg(g) FROM generate_series(1, 1000) g), queue => 'big')`);
    await dead('big', 'big.work', 1000);
    await q(`SELECT sluice.enqueue_many('small.a', '[1, 2, 3]', queue => 'small')`);
    await q(`SELECT sluice.enqueue_many('small.b', '[1, 2]', queue => 'small', run_at => now() + interval '1 hour')`);
    await dead('small', 'small.a', 2);
    // Only dead jobs here: nothing live to list it in the statistics of jobs either.
    await dead('tiny', 'tiny.x', 1);
    await analyzeKeepingTopCombination();
    const listed = await q(`SELECT DISTINCT queue FROM sluice.mcv_estimates() ORDER BY queue`);
    expect(listed.rows.map((r) => r.queue)).toEqual(['big']);
  });

  it('reports the jobs of queues missing from the statistics, counted exactly', async () => {
    const rows = await jobDepth(db.pool, 500);
    expect(rows.filter((r) => r.queue !== 'big')).toEqual([
      row('small', 'small.a', 'available', 3),
      row('small', 'small.a', 'dead', 2),
      row('small', 'small.b', 'scheduled', 2),
      row('tiny', 'tiny.x', 'dead', 1),
    ]);
    // The big queue is still estimated (ANALYZE sampled all of it, so the estimate is the count).
    expect(rows.filter((r) => r.queue === 'big')).toEqual([
      { queue: 'big', name: 'big.work', state: 'available', jobs: 1000, estimated: true },
      { queue: 'big', name: 'big.work', state: 'dead', jobs: 1000, estimated: true },
    ]);
  });
});

describe('queue stats above the default threshold', () => {
  beforeAll(async () => {
    await q(`SELECT sluice.enqueue_many('huge.work', (SELECT jsonb_agg(g) FROM generate_series(1, 100500) g), queue => 'huge')`);
    await dead('huge', 'huge.work', 100500);
    await q(`SELECT sluice.enqueue_many('few.a', '[1, 2, 3, 4]', queue => 'few')`);
    await dead('few', 'few.a', 1);
    await analyzeKeepingTopCombination();
  });

  it("shows a small queue's jobs beside a backlog of over 100,000", async () => {
    const [few] = await queueStatsAll(db.pool, 'few');
    expect(few).toMatchObject({ available: 4, scheduled: 0, dead: 1, estimated: false });
    const [huge] = await queueStatsAll(db.pool, 'huge');
    expect(huge).toMatchObject({ estimated: true });
  });

  it("reads the small queues' jobs through the indexes, never the big queue's", async () => {
    const c = await db.pool.connect();
    try {
      const { plans } = await withPlans(c, () => c.query('SELECT * FROM sluice.job_depth()'));
      const all = plans.join('\n');
      expect(all).not.toMatch(/Seq Scan on (jobs|dead_jobs)/);
      const read = (table: string) =>
        [...all.matchAll(new RegExp(`on ${table} \\w+ +\\(cost=[^)]*\\) \\(actual rows=(\\d+) loops=(\\d+)\\)`, 'g'))]
          .reduce((n, m) => n + Number(m[1]) * Number(m[2]), 0);
      // Each table holds over 100,000 rows. Read: an index entry per queue
      // present, and the probes of the queues the statistics leave out
      // ('big' is one of them, with 1,000 jobs: a probe's most).
      expect(read('jobs')).toBeGreaterThan(1000);
      expect(read('jobs')).toBeLessThan(1100);
      expect(read('dead_jobs')).toBeLessThan(1100);
    } finally {
      c.release();
    }
  });

  it('marks every queue estimated once scheduled jobs are too many to count', async () => {
    await q(`SELECT sluice.enqueue_many('huge.later', (SELECT jsonb_agg(g) FROM generate_series(1, 1500) g), queue => 'huge',
               run_at => now() + interval '1 day')`);
    await analyzeKeepingTopCombination();
    const [few] = await queueStatsAll(db.pool, 'few');
    // Its available and dead jobs are still counted; a scheduled one could be missing.
    expect(few).toMatchObject({ available: 4, scheduled: 0, dead: 1, estimated: true });
    const rows = await jobDepth(db.pool);
    expect(rows.find((r) => r.queue === 'huge' && r.state === 'scheduled')).toMatchObject({ estimated: true });
    expect(rows.find((r) => r.queue === 'few' && r.state === 'available')).toEqual(row('few', 'few.a', 'available', 4));
  });
});
