// Issue 6, points 4-5: cluster-wide limits enforced in the claim SQL, proven
// with several worker processes (test/fixtures/limits-worker.ts). Each
// handler records its start and end with the database clock; overlaps and
// rate windows are computed in SQL from those timestamps and from the claim
// times (attempted_at), never from timers in the test.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sluice, ValidationError } from '../packages/sluice/src/index.js';
import { jobClaim } from '../packages/sluice/src/sql/job-leases.js';
import { spawnFixture, type Child } from './helpers/child.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { LIMIT_RUNS_SQL, READY_LINE, concurrencyJob, fairJob, fairOneJob, groupJob, rateJob } from './fixtures/limits-job.js';

const PROCESSES = 3;
const CONCURRENCY_PER_PROCESS = 4;

let db: TestDb;
let sluice: Sluice;
const children: Child[] = [];

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  await db.pool.query(LIMIT_RUNS_SQL);
  for (let i = 0; i < PROCESSES; i++) {
    children.push(spawnFixture('test/fixtures/limits-worker.ts', [db.url, `p${i}`, String(CONCURRENCY_PER_PROCESS), '50']));
  }
  await Promise.all(children.map((c, i) => c.waitForLine(new RegExp(`^${READY_LINE} p${i}$`), 60_000)));
});
afterAll(async () => {
  for (const c of children) {
    c.process.kill('SIGTERM');
    const timer = setTimeout(() => c.process.kill('SIGKILL'), 10_000);
    await c.exited;
    clearTimeout(timer);
  }
  await sluice.close();
  await db.drop();
});

/** Most handlers of `queue` running at one instant (optionally per tenant), from the recorded start/end times. */
async function maxOverlap(queue: string): Promise<{ all: number; perTenant: Map<string, number> }> {
  const overlap = (partition: string) => `
    WITH r AS (SELECT * FROM limit_runs WHERE queue = $1),
    ev AS (SELECT tenant, started_at AS t, 1 AS d FROM r UNION ALL SELECT tenant, ended_at, -1 FROM r)
    SELECT ${partition ? 'tenant,' : ''} max(running)::int AS n FROM (
      SELECT tenant, sum(d) OVER (${partition ? 'PARTITION BY tenant' : ''} ORDER BY t, d) AS running FROM ev
    ) x ${partition ? 'GROUP BY tenant' : ''}`;
  const all = await db.pool.query<{ n: number }>(overlap(''), [queue]);
  const per = await db.pool.query<{ tenant: string; n: number }>(overlap('tenant'), [queue]);
  return { all: all.rows[0]!.n, perTenant: new Map(per.rows.map((r) => [r.tenant, r.n])) };
}

async function ended(queue: string): Promise<number> {
  return count(db.pool, `SELECT count(*) n FROM limit_runs WHERE queue = $1 AND ended_at IS NOT NULL`, [queue]);
}

/** Handlers ended and their completions written (acknowledgements are batched, so they land a little later). */
async function allDone(queue: string, jobs: number): Promise<boolean> {
  return (
    (await ended(queue)) === jobs &&
    (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = $1 AND state = 'completed'`, [queue])) === jobs
  );
}

/** Samples the database's own count of running jobs (claimed, in any process) while `until` is pending. */
function sampleRunning(queue: string, byGroup: boolean): { stop: () => Promise<number> } {
  let max = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT coalesce(max(n), 0)::int AS n FROM (
           SELECT count(*) AS n FROM sluice.jobs WHERE queue = $1 AND state = 'running' GROUP BY ${byGroup ? 'group_key' : 'queue'}
         ) x`,
        [queue],
      );
      max = Math.max(max, rows[0]!.n);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return max;
    },
  };
}

describe('concurrency limits across worker processes', () => {
  it('queue concurrency 3: never more than 3 running in the whole cluster, and 3 reached', async () => {
    const LIMIT = 3;
    const JOBS = 30;
    await sluice.queues.pause('lim.conc');
    await sluice.queues.configure('lim.conc', { concurrency: LIMIT });
    await sluice.enqueueMany(concurrencyJob, Array.from({ length: JOBS }, (_, n) => ({ n, holdMs: 150 })));
    const sampler = sampleRunning('lim.conc', false);
    await sluice.queues.resume('lim.conc');
    await waitUntil(() => allDone('lim.conc', JOBS), { timeoutMs: 30_000, what: 'all lim.conc jobs' });
    const dbMax = await sampler.stop();

    const { all } = await maxOverlap('lim.conc');
    expect(all).toBe(LIMIT);
    expect(dbMax).toBeLessThanOrEqual(LIMIT);
    // The work was really shared by several processes (12 slots in all).
    expect(await count(db.pool, `SELECT count(DISTINCT worker) n FROM limit_runs WHERE queue = 'lim.conc'`)).toBeGreaterThanOrEqual(2);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'lim.conc' AND state = 'completed'`)).toBe(JOBS);
  });

  it('groupConcurrency 2: never more than 2 per tenant, each tenant reaches 2, tenants run side by side', async () => {
    const TENANTS = ['t1', 't2', 't3', 't4'];
    const PER_TENANT = 8;
    await sluice.queues.pause('lim.group');
    await sluice.queues.configure('lim.group', { groupConcurrency: 2 });
    for (const tenant of TENANTS) {
      await sluice.enqueueMany(groupJob, Array.from({ length: PER_TENANT }, (_, n) => ({ n, tenant, holdMs: 120 })), { groupKey: tenant });
    }
    const sampler = sampleRunning('lim.group', true);
    await sluice.queues.resume('lim.group');
    await waitUntil(() => allDone('lim.group', TENANTS.length * PER_TENANT), { timeoutMs: 30_000, what: 'all lim.group jobs' });
    const dbMaxPerGroup = await sampler.stop();

    const { all, perTenant } = await maxOverlap('lim.group');
    for (const t of TENANTS) expect(perTenant.get(t), `tenant ${t}`).toBe(2);
    expect(dbMaxPerGroup).toBeLessThanOrEqual(2);
    // The limit is per group, not per queue: several tenants ran at once.
    expect(all).toBeGreaterThanOrEqual(4);
    expect(await count(db.pool, `SELECT count(DISTINCT worker) n FROM limit_runs WHERE queue = 'lim.group'`)).toBeGreaterThanOrEqual(2);
  });

  // A big tenant's 300 jobs enqueued first, then a small tenant's 10. Under
  // FIFO the small tenant's jobs would finish at positions 301-310 of the
  // global completion order; with a fair share of the 4 slots (2 each) they
  // would all be done by about position 20. Allowed: twice that.
  const SMALL_DONE_WITHIN = 40;
  it.each([
    ['lim.fair', { concurrency: 4, groupConcurrency: 4 }, fairJob],
    ['lim.fair1', { concurrency: 4, groupConcurrency: 1 }, fairOneJob],
  ] as const)(`%s %j: the small tenant's 10 jobs all finish within the first ${SMALL_DONE_WITHIN} of 310`, async (queue, settings, job) => {
    await sluice.queues.pause(queue);
    await sluice.queues.configure(queue, settings);
    await sluice.enqueueMany(job, Array.from({ length: 300 }, (_, n) => ({ n, tenant: 'big', holdMs: 15 })), { groupKey: 'big' });
    await sluice.enqueueMany(job, Array.from({ length: 10 }, (_, n) => ({ n, tenant: 'small', holdMs: 15 })), { groupKey: 'small' });
    await sluice.queues.resume(queue);
    await waitUntil(
      async () => (await count(db.pool, `SELECT count(*) n FROM limit_runs WHERE queue = $1 AND tenant = 'small' AND ended_at IS NOT NULL`, [queue])) === 10,
      { timeoutMs: 30_000, what: `small tenant done in ${queue}` },
    );
    // The rest of the big tenant is not needed: cancel it (from SQL).
    await db.pool.query(`SELECT sluice.cancel_many(ARRAY(SELECT id FROM sluice.jobs WHERE queue = $1 AND state = 'available'))`, [queue]);
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = $1`, [queue])) === 0, {
      what: `${queue} drained`,
    });

    const { rows } = await db.pool.query<{ pos: number; big_before: number }>(
      `WITH ranked AS (
         SELECT tenant, row_number() OVER (ORDER BY ended_at, job_id)::int AS pos FROM limit_runs WHERE queue = $1 AND ended_at IS NOT NULL
       )
       SELECT max(pos) FILTER (WHERE tenant = 'small') AS pos,
              count(*) FILTER (WHERE tenant = 'big' AND pos < (SELECT max(pos) FROM ranked WHERE tenant = 'small'))::int AS big_before
       FROM ranked`,
      [queue],
    );
    console.log(`${queue} ${JSON.stringify(settings)}: last small job finished at position ${rows[0]!.pos} (${rows[0]!.big_before} big jobs before it)`);
    expect(rows[0]!.pos).toBeLessThanOrEqual(SMALL_DONE_WITHIN);

    const { all, perTenant } = await maxOverlap(queue);
    expect(all).toBeLessThanOrEqual(settings.concurrency);
    expect(perTenant.get('big')).toBeLessThanOrEqual(settings.groupConcurrency);
    expect(perTenant.get('small')).toBeLessThanOrEqual(settings.groupConcurrency);
  });
});

describe('round-robin across groups in the claim SQL', () => {
  // No worker serves this queue: the test claims by hand, one job per claim,
  // as a worker does whenever a single slot frees up.
  it('successive one-job claims take turns between a big tenant (enqueued first) and a small one', async () => {
    await sluice.queues.configure('lim.rr', { concurrency: 4, groupConcurrency: 4 });
    await db.pool.query(
      `SELECT sluice.enqueue_many('lim.rr.job', (SELECT jsonb_agg(jsonb_build_object('n', g)) FROM generate_series(1, 20) g),
         queue => 'lim.rr', group_keys => array_fill('big'::text, ARRAY[20]))`,
    );
    await db.pool.query(
      `SELECT sluice.enqueue_many('lim.rr.job', (SELECT jsonb_agg(jsonb_build_object('n', g)) FROM generate_series(1, 5) g),
         queue => 'lim.rr', group_keys => array_fill('small'::text, ARRAY[5]))`,
    );
    const claimed: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { rows } = await db.pool.query<{ group_key: string }>(
        `SELECT j.group_key FROM sluice.claim(ARRAY['lim.rr'], ARRAY[1], 'by-hand', 60000) c JOIN sluice.jobs j ON j.id = c.id`,
      );
      claimed.push(...rows.map((r) => r.group_key));
    }
    await db.pool.query(`SELECT sluice.cancel_many(ARRAY(SELECT id FROM sluice.jobs WHERE queue = 'lim.rr'))`);
    expect(claimed).toHaveLength(4);
    // Fair turns give each tenant two of the four slots.
    expect(claimed.filter((g) => g === 'small'), `claimed in turn: ${claimed.join(', ')}`).toHaveLength(2);
  });
});

describe('rate limit across worker processes', () => {
  it('5 jobs per 300 ms, cluster-wide: no 300 ms window, wherever it starts, holds more than 5 claims', async () => {
    const COUNT = 5;
    const INTERVAL_MS = 300;
    const JOBS = 60;
    await sluice.queues.pause('lim.rate');
    await sluice.queues.configure('lim.rate', { rateLimit: { count: COUNT, intervalMs: INTERVAL_MS } });
    await sluice.enqueueMany(rateJob, Array.from({ length: JOBS }, (_, n) => ({ n })));
    await sluice.queues.resume('lim.rate');
    await waitUntil(() => allDone('lim.rate', JOBS), { timeoutMs: 40_000, what: 'all lim.rate jobs' });

    // Claim times by the database clock. The busiest window of INTERVAL_MS
    // starts at some claim: count the claims in [t, t + INTERVAL_MS) from
    // every claim time t (microseconds, as stored).
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT max(n)::int AS n FROM (
         SELECT count(*) OVER (ORDER BY attempted_at RANGE BETWEEN CURRENT ROW AND $1::interval FOLLOWING) AS n
         FROM sluice.job_history WHERE queue = 'lim.rate') x`,
      [`${INTERVAL_MS * 1000 - 1} microseconds`],
    );
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'lim.rate'`)).toBe(JOBS);
    expect(rows[0]!.n).toBe(COUNT);
    // Every job ran once, and several processes took part: the limit held across them.
    expect(await count(db.pool, `SELECT count(DISTINCT job_id) n FROM limit_runs WHERE queue = 'lim.rate'`)).toBe(JOBS);
    expect(await count(db.pool, `SELECT count(*) n FROM limit_runs WHERE queue = 'lim.rate'`)).toBe(JOBS);
    expect(await count(db.pool, `SELECT count(DISTINCT worker) n FROM limit_runs WHERE queue = 'lim.rate'`)).toBeGreaterThanOrEqual(2);
  });
});

describe('bad input to the limit options names the option and writes nothing', () => {
  it.each([
    ['settings.concurrency', { concurrency: 0 }],
    ['settings.concurrency', { concurrency: -1 }],
    ['settings.concurrency', { concurrency: 1.5 }],
    ['settings.concurrency', { concurrency: '3' }],
    ['settings.groupConcurrency', { groupConcurrency: 0 }],
    ['settings.groupConcurrency', { groupConcurrency: 2.5 }],
    ['settings.rateLimit.count', { rateLimit: { count: 0, intervalMs: 1000 } }],
    ['settings.rateLimit.intervalMs', { rateLimit: { count: 5 } }],
    ['settings.rateLimit.intervalMs', { rateLimit: { count: 5, intervalMs: 0 } }],
    ['settings.rateLimit', { rateLimit: { count: 5, intervalMs: 1000, burst: 2 } }],
    ['settings.rateLimit', { rateLimit: 5 }],
  ])('queues.configure %s %j', async (field, settings) => {
    const err = await sluice.queues.configure('lim.bad', settings as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'lim.bad'`)).toBe(0);
  });

  it.each([
    ['options.groupKey', { groupKey: '' }],
    ['options.groupKey', { groupKey: 'x'.repeat(257) }],
    ['options.groupKey', { groupKey: 42 }],
  ])('enqueue %s %j', async (field, options) => {
    const err = await sluice.enqueue(groupJob, { n: 90_000 }, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE (payload->>'n')::int >= 90000`)).toBe(0);
  });

  it('enqueueMany with a groupKey function returning a non-string names the index', async () => {
    const err = await sluice
      .enqueueMany(groupJob, [{ n: 90_001 }, { n: 90_002 }], { groupKey: (_p, i) => (i === 1 ? (7 as never) : 'ok') })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('options.groupKey[1]');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE (payload->>'n')::int >= 90000`)).toBe(0);
  });

  it('SQL queue_configure refuses half a rate limit, writing nothing', async () => {
    await expect(db.pool.query(`SELECT sluice.queue_configure('lim.sqlbad', '{"rate_limit_count": 5}')`)).rejects.toMatchObject({ code: '22023' });
    await expect(db.pool.query(`SELECT sluice.queue_configure('lim.sqlbad', '{"concurrency": 0}')`)).rejects.toMatchObject({ code: '22023' });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'lim.sqlbad'`)).toBe(0);
  });
});

describe('claims on several limited queues', () => {
  // No worker serves these queues: four connections send the worker's claim
  // statement, each listing the two queues in its own order (a worker's
  // order is its `queues` option, or its handlers'). Each claim locks the
  // row of every limited queue it claims from; taken in the callers' orders,
  // two claims deadlocked (40P01).
  it('claimers listing two limited queues in opposite orders never deadlock, and the limits hold', async () => {
    const LIMIT = 1000;
    for (const queue of ['lim.order-a', 'lim.order-b']) {
      await sluice.queues.configure(queue, { concurrency: LIMIT });
      await db.pool.query(`SELECT sluice.enqueue_many('lim.order.job', (SELECT jsonb_agg(g) FROM generate_series(1, 3000) g), queue => $1)`, [
        queue,
      ]);
    }
    const clients = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        return c;
      }),
    );
    const errors: string[] = [];
    const until = performance.now() + 8_000;
    try {
      await Promise.all(
        clients.map(async (c, k) => {
          const queues = k % 2 ? ['lim.order-a', 'lim.order-b'] : ['lim.order-b', 'lim.order-a'];
          for (let i = 0; i < 700 && performance.now() < until && errors.length === 0; i++) {
            await jobClaim(c, { queues, limits: [1, 1], workerId: `order-${k}`, leaseMs: 60_000 }).catch((e: { code?: string }) =>
              errors.push(String(e.code)),
            );
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    expect(errors).toEqual([]);
    const { rows } = await db.pool.query<{ queue: string; n: number }>(
      `SELECT queue, count(*)::int AS n FROM sluice.jobs WHERE queue LIKE 'lim.order-%' AND state = 'running' GROUP BY queue ORDER BY queue`,
    );
    expect(rows.map((r) => r.queue)).toEqual(['lim.order-a', 'lim.order-b']);
    for (const r of rows) expect(r.n).toBeLessThanOrEqual(LIMIT);
    await db.pool.query(`SELECT sluice.cancel_many(ARRAY(SELECT id FROM sluice.jobs WHERE queue LIKE 'lim.order-%'))`);
  }, 30_000);
});

describe('a limited queue whose row a producer holds', () => {
  // A producer that enqueues into a bounded queue locks the queue's row until
  // its transaction ends. A claim that waited for it there past the 10 s after
  // which its worker gives a claim up committed later for no one: its jobs
  // ran under no worker until the rescuer took them, an attempt spent.
  it('a claim skips that queue after a short wait, and claims the jobs of its other queues, while the producer is still open', async () => {
    await sluice.queues.configure('lim.held', { concurrency: 5, maxDepth: 100 });
    const [held] = (await db.pool.query<{ id: string }>(`SELECT sluice.enqueue_many('lim.held.job', '[{}]', queue => 'lim.held') AS id`)).rows;
    const [free] = (await db.pool.query<{ id: string }>(`SELECT sluice.enqueue_many('lim.free.job', '[{}]', queue => 'lim.free') AS id`)).rows;
    const producer = new pg.Client({ connectionString: db.url });
    await producer.connect();
    try {
      await producer.query('BEGIN');
      await producer.query(`SELECT sluice.enqueue_many('lim.held.job', '[{}]', queue => 'lim.held')`);
      // Awaited while the producer's transaction is open: a claim that waited for its end would never return.
      const claimed = await jobClaim(db.pool, { queues: ['lim.free', 'lim.held'], limits: [5, 5], workerId: 'lim:held', leaseMs: 60_000 });
      expect(claimed.map((c) => c.id)).toEqual([Number(free!.id)]);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1 AND state = 'available'`, [held!.id])).toBe(1);
      await producer.query('ROLLBACK');
      const after = await jobClaim(db.pool, { queues: ['lim.free', 'lim.held'], limits: [5, 5], workerId: 'lim:held', leaseMs: 60_000 });
      expect(after.map((c) => c.id)).toEqual([Number(held!.id)]);
    } finally {
      await producer.end();
      await db.pool.query(`DELETE FROM sluice.jobs WHERE locked_by = 'lim:held'`);
    }
  }, 30_000);
});
