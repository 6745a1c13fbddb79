// A transaction held open elsewhere (a REPEATABLE READ report, a pg_dump)
// keeps the index entry of every job claimed or run since it began, and the
// planner cannot know: it sizes a partial index by its live rows. A statement
// that the worker sends for every batch or beat must therefore find its jobs
// by primary key and never read jobs_running_queue_idx (every job run since),
// and the ager must read no job when no queue ages (the claim index holds
// every job claimed since). Counted with the transaction's own index-scan
// counters, for a batch as large as a busy worker sends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { workerHeartbeat } from '../packages/sluice/src/sql/workers.js';
import { createTestDb, type TestDb } from './helpers/db.js';
import { rowsRemovedByJoinFilters, withPlans } from './helpers/plans.js';

let db: TestDb;
const WORKER = 'plans-worker';
const BATCH = 2_000;

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

interface Claimed {
  ids: string[];
  attempts: number[];
  leases: string[];
}

async function claimBatch(queue: string): Promise<Claimed> {
  await db.pool.query(`SELECT sluice.enqueue_many('plans.job', (SELECT jsonb_agg(g) FROM generate_series(1, $2::integer) g), $1)`, [queue, BATCH]);
  const { rows } = await db.pool.query<Claimed>(
    `SELECT array_agg(c.id) AS ids, array_agg(c.attempt) AS attempts, array_agg(c.lease) AS leases
     FROM sluice.claim(ARRAY[$1], ARRAY[$2]::integer[], $3, 60000) c`,
    [queue, BATCH, WORKER],
  );
  expect(rows[0]!.ids).toHaveLength(BATCH);
  return rows[0]!;
}

/**
 * Runs fn in a transaction and returns how often it scanned the index, with
 * fn's result. The counter is the backend's not yet reported one, which no
 * report empties inside a transaction block: the difference is fn's alone.
 */
async function scansOf<T>(index: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<{ scans: number; result: T }> {
  const c = await db.pool.connect();
  const count = async () => Number((await c.query<{ n: string }>('SELECT pg_stat_get_xact_numscans($1::regclass) AS n', [index])).rows[0]!.n);
  try {
    await c.query('BEGIN');
    const before = await count();
    const result = await fn(c);
    const scans = (await count()) - before;
    await c.query('COMMIT');
    return { scans, result };
  } finally {
    c.release();
  }
}

describe('statements a held snapshot would slow down', () => {
  /**
   * Runs call (on one session) more than the five times after which that
   * session may keep one generic plan, on a nearly empty table; grows the
   * table by 20,000 jobs without an ANALYZE (autovacuum off or held back:
   * nothing tells the session); returns the sequential scans of sluice.jobs
   * one more call makes. analyzeFirst: statistics of a nearly empty table,
   * as a bench or a deploy that analyzes before traffic leaves them.
   */
  async function seqScansOnceGrown(
    call: (fresh: TestDb, session: pg.Client) => Promise<void>,
    options: { analyzeFirst: boolean },
  ): Promise<number> {
    const fresh = await createTestDb();
    const session = new pg.Client({ connectionString: fresh.url });
    await session.connect();
    const seqScans = async () =>
      Number((await session.query<{ n: string }>(`SELECT pg_stat_get_xact_numscans('sluice.jobs'::regclass) AS n`)).rows[0]!.n);
    try {
      if (options.analyzeFirst) {
        await call(fresh, session);
        await fresh.pool.query('ANALYZE sluice.jobs');
      }
      for (let i = 0; i < 8; i++) await call(fresh, session);
      await fresh.pool.query(
        `SELECT sluice.enqueue_many('plans.job', (SELECT jsonb_agg(g) FROM generate_series(1, 20000) g), 'plans-later', now() + interval '1 day')`,
      );
      await session.query('BEGIN');
      const before = await seqScans();
      await call(fresh, session);
      const scans = (await seqScans()) - before;
      await session.query('COMMIT');
      return scans;
    } finally {
      await session.end();
      await fresh.drop();
    }
  }

  it('a worker session whose first claims met an empty table still finds jobs by index once the table has grown', async () => {
    const claimAndComplete = async (fresh: TestDb, session: pg.Client) => {
      await fresh.pool.query(`SELECT sluice.enqueue_many('plans.job', '[1]'::jsonb, 'plans-grow')`);
      const { rows } = await session.query<Claimed>(
        `SELECT array_agg(c.id) AS ids, array_agg(c.attempt) AS attempts, array_agg(c.lease) AS leases
         FROM sluice.claim(ARRAY['plans-grow'], ARRAY[1], $1, 60000) c`,
        [WORKER],
      );
      const done = await session.query(`SELECT sluice.job_complete_many($1::bigint[], $2::integer[], NULL, NULL, $3, $4::bigint[]) AS id`, [
        rows[0]!.ids,
        rows[0]!.attempts,
        WORKER,
        rows[0]!.leases,
      ]);
      expect(done.rows).toHaveLength(1);
    };
    expect(await seqScansOnceGrown(claimAndComplete, { analyzeFirst: false })).toBe(0);
  });

  it('the wake-up after an enqueue, first sent while the table was nearly empty, still finds its jobs by index once the table has grown', async () => {
    const enqueueAndWake = async (fresh: TestDb, session: pg.Client) => {
      const { rows } = await fresh.pool.query<{ id: string }>(`SELECT sluice.enqueue_many('plans.job', '[1]'::jsonb, 'plans-wake') AS id`);
      await session.query('SELECT sluice.wake_workers($1::bigint[])', [rows.map((r) => r.id)]);
    };
    expect(await seqScansOnceGrown(enqueueAndWake, { analyzeFirst: true })).toBe(0);
  });

  it('the heartbeat and the completion of a large batch find their jobs by primary key, not through the running-jobs index', async () => {
    const claimed = await claimBatch('plans-complete');
    const beat = await scansOf('sluice.jobs_running_queue_idx', (c) => workerHeartbeat(c, WORKER, 60_000, claimed.ids.map(Number)));
    expect(beat.scans).toBe(0);
    const done = await scansOf('sluice.jobs_running_queue_idx', async (c) => {
      const { rows } = await c.query(`SELECT sluice.job_complete_many($1::bigint[], $2::integer[], NULL, NULL, $3, $4::bigint[]) AS id`, [
        claimed.ids,
        claimed.attempts,
        WORKER,
        claimed.leases,
      ]);
      return rows.length;
    });
    expect(done).toEqual({ scans: 0, result: BATCH });
  });

  describe('statistics taken while nothing ran', () => {
    // An ANALYZE before work starts (or autovacuum's last one) saw a queue of
    // waiting jobs and none running, so "locked_by IS NOT NULL" looks like one
    // row. A completion or failure of a large batch must still look its jobs
    // up by id and match them to its input in one pass: neither read every
    // job of the table, nor compare each job with every input row.
    let fresh: TestDb;
    const BACKLOG = 20_000;
    // A worker's long-lived session, whose later calls run the plans its
    // earlier ones left; and new sessions, which plan each call afresh.
    let session: pg.Client;
    beforeAll(async () => {
      fresh = await createTestDb();
      session = new pg.Client({ connectionString: fresh.url });
      await session.connect();
      await fresh.pool.query(`SELECT sluice.enqueue_many('plans.job', (SELECT jsonb_agg(g) FROM generate_series(1, $1::integer) g), 'plans-backlog')`, [
        BACKLOG,
      ]);
      await fresh.pool.query('ANALYZE sluice.jobs');
    });
    afterAll(async () => {
      await session?.end();
      await fresh?.drop();
    });

    async function claimOnStaleStatistics(): Promise<Claimed> {
      const { rows } = await fresh.pool.query<Claimed>(
        `SELECT array_agg(c.id) AS ids, array_agg(c.attempt) AS attempts, array_agg(c.lease) AS leases
         FROM sluice.claim(ARRAY['plans-backlog'], ARRAY[1000], $1, 60000) c`,
        [WORKER],
      );
      expect(rows[0]!.ids).toHaveLength(1000);
      return rows[0]!;
    }

    /** Primary-key entries read and join rows thrown away by sql. */
    async function workOf(
      sql: string,
      params: unknown[],
      on: 'session' | 'new session' = 'session',
    ): Promise<{ rows: number; keyEntries: number; joinRowsRemoved: number }> {
      const c = on === 'session' ? session : new pg.Client({ connectionString: fresh.url });
      if (c !== session) await c.connect();
      const keyEntries = async () =>
        Number((await c.query<{ n: string }>(`SELECT pg_stat_get_xact_tuples_returned('sluice.jobs_pkey'::regclass) AS n`)).rows[0]!.n);
      try {
        await c.query('BEGIN');
        const before = await keyEntries();
        const { result, plans } = await withPlans(c, () => c.query(sql, params));
        const read = (await keyEntries()) - before;
        await c.query('COMMIT');
        return { rows: result.rowCount ?? 0, keyEntries: read, joinRowsRemoved: rowsRemovedByJoinFilters(plans) };
      } catch (error) {
        await c.query('ROLLBACK');
        throw error;
      } finally {
        if (c !== session) await c.end();
      }
    }

    it('a completion', async () => {
      // Several batches, on both kinds of session: the planner's choice
      // between joins turns on costs that move with each batch's changes.
      let joinRowsRemoved = 0;
      for (let round = 0; round < 6; round++) {
        const claimed = await claimOnStaleStatistics();
        const work = await workOf(
          `SELECT sluice.job_complete_many($1::bigint[], $2::integer[], NULL, NULL, $3, $4::bigint[]) AS id`,
          [claimed.ids, claimed.attempts, WORKER, claimed.leases],
          round % 2 === 0 ? 'session' : 'new session',
        );
        expect(work.rows).toBe(1000);
        expect(work.keyEntries).toBeLessThan(3000);
        joinRowsRemoved += work.joinRowsRemoved;
      }
      expect(joinRowsRemoved).toBeLessThan(1000);
    });

    it('a failure, retried and dead', async () => {
      const error = { attempt: 1, at: new Date().toISOString(), kind: 'error', name: 'Error', message: 'planned' };
      let joinRowsRemoved = 0;
      for (let round = 0; round < 6; round++) {
        const claimed = await claimOnStaleStatistics();
        const work = await workOf(
          `SELECT * FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[], NULL, NULL, $5, $6::bigint[])`,
          [claimed.ids, claimed.attempts, claimed.ids.map(() => error), claimed.ids.map((_, i) => i % 2 === 0), WORKER, claimed.leases],
          round % 2 === 0 ? 'session' : 'new session',
        );
        expect(work.rows).toBe(1000);
        joinRowsRemoved += work.joinRowsRemoved;
      }
      expect(joinRowsRemoved).toBeLessThan(1000);
    });

    it('a cancellation of many', async () => {
      let joinRowsRemoved = 0;
      for (let round = 0; round < 6; round++) {
        const { rows } = await fresh.pool.query<{ ids: string[] }>(
          `SELECT array_agg(id) AS ids FROM (SELECT id FROM sluice.jobs WHERE queue = 'plans-backlog' AND state = 'available' ORDER BY id LIMIT 1000) j`,
        );
        const work = await workOf(`SELECT sluice.cancel_many($1::bigint[]) AS id`, [rows[0]!.ids]);
        expect(work.rows).toBe(1000);
        joinRowsRemoved += work.joinRowsRemoved;
      }
      expect(joinRowsRemoved).toBeLessThan(1000);
    });
  });

  it('the failure of a large batch finds its jobs by primary key', async () => {
    const claimed = await claimBatch('plans-fail');
    const failed = await scansOf('sluice.jobs_running_queue_idx', async (c) => {
      const error = { attempt: 1, at: new Date().toISOString(), kind: 'error', name: 'Error', message: 'planned' };
      const { rows } = await c.query(
        `SELECT * FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[], NULL, NULL, $5, $6::bigint[])`,
        [claimed.ids, claimed.attempts, claimed.ids.map(() => error), claimed.ids.map(() => false), WORKER, claimed.leases],
      );
      return rows.length;
    });
    expect(failed).toEqual({ scans: 0, result: BATCH });
  });

  it('the ager reads no job while no queue ages, and still ages where one does', async () => {
    await db.pool.query(`SELECT sluice.enqueue_many('plans.job', '[1, 2, 3]'::jsonb, 'plans-age', now() - interval '1 hour')`);
    const idle = await scansOf('sluice.jobs_claim_idx', async (c) => (await c.query<{ n: number }>('SELECT sluice.age_priorities(1000) AS n')).rows[0]!.n);
    expect(idle).toEqual({ scans: 0, result: 0 });
    await db.pool.query(`UPDATE sluice.queues SET aging_after_ms = 1000 WHERE name = 'plans-age'`);
    const { rows } = await db.pool.query<{ n: number }>('SELECT sluice.age_priorities(1000) AS n');
    expect(rows[0]!.n).toBe(3);
  });
});
