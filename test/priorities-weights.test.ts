// Issue 6, points 1-3: named priorities and aging, weighted queues, pause and
// resume. Every rule is checked against a real PostgreSQL through real
// workers; time only appears where the feature is about time (aging), and
// then from database timestamps. How fast a resume wakes a worker is measured
// in packages/bench.
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { main as cli } from '../packages/sluice/src/cli/main.js';
import { Sluice, ValidationError, defineJob, type Worker } from '../packages/sluice/src/index.js';
import { interleaveByQueue } from '../packages/sluice/src/worker/interleave.js';
import { ClaimWatchingPool } from './helpers/claims.js';
import { count, waitUntil, type TestDb } from './helpers/db.js';
import { useSuite } from './helpers/suite.js';

const suite = useSuite({ pollIntervalMs: 100, runScheduler: false });
let db: TestDb;
let sluice: Sluice;
beforeAll(() => {
  ({ db, sluice } = suite);
});
const start = suite.startWorker;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** Share of each queue among `order`, in percent. */
function shares(order: string[], queues: string[]): Record<string, number> {
  return Object.fromEntries(queues.map((q) => [q, (100 * order.filter((x) => x === q).length) / order.length]));
}

describe('named priorities', () => {
  it('critical > high > normal > low, FIFO within each, stored as 20/10/0/-10', async () => {
    const job = defineJob({ name: 'prio.named', queue: 'pw.prio', schema: z.object({ tag: z.string() }) });
    const plan: [string, 'critical' | 'high' | 'normal' | 'low' | undefined][] = [
      ['low-1', 'low'],
      ['normal-1', undefined],
      ['critical-1', 'critical'],
      ['high-1', 'high'],
      ['low-2', 'low'],
      ['critical-2', 'critical'],
      ['normal-2', 'normal'],
      ['high-2', 'high'],
      ['low-3', 'low'],
      ['high-3', 'high'],
    ];
    const ids: Record<string, number> = {};
    for (const [tag, priority] of plan) {
      ids[tag] = await sluice.enqueue(job, { tag }, priority ? { priority } : {});
    }
    expect((await sluice.getJob(ids['critical-1']!)).priority).toBe(20);
    expect((await sluice.getJob(ids['high-1']!)).priority).toBe(10);
    expect((await sluice.getJob(ids['normal-1']!)).priority).toBe(0);
    expect((await sluice.getJob(ids['normal-2']!)).priority).toBe(0);
    expect((await sluice.getJob(ids['low-1']!)).priority).toBe(-10);

    const order: string[] = [];
    const w = start({ handlers: [job.handle(async (p) => void order.push(p.tag))], concurrency: 1, prefetch: 0 });
    await w.start();
    await waitUntil(() => order.length === plan.length, { what: 'all prioritised jobs' });
    expect(order).toEqual([
      'critical-1', 'critical-2',
      'high-1', 'high-2', 'high-3',
      'normal-1', 'normal-2',
      'low-1', 'low-2', 'low-3',
    ]);
  });

  it('a job definition may carry a named priority, and an enqueue option overrides it', async () => {
    const job = defineJob({ name: 'prio.def', queue: 'pw.def', schema: z.object({}), priority: 'high' });
    expect(job.priority).toBe(10);
    const a = await sluice.enqueue(job, {});
    const b = await sluice.enqueue(job, {}, { priority: 'low' });
    const c = await sluice.enqueue(job, {}, { priority: 7 });
    expect((await sluice.getJob(a)).priority).toBe(10);
    expect((await sluice.getJob(b)).priority).toBe(-10);
    expect((await sluice.getJob(c)).priority).toBe(7);
  });

  it('aging lets a low job run while high jobs keep arriving; without aging it starves', async () => {
    const AGING_MS = 100;
    const aged = defineJob({ name: 'prio.aged', queue: 'pw.aging', schema: z.object({ kind: z.string() }) });
    const starved = defineJob({ name: 'prio.starved', queue: 'pw.starve', schema: z.object({ kind: z.string() }) });
    await sluice.queues.configure('pw.aging', { agingAfterMs: AGING_MS });

    const lowAged = await sluice.enqueue(aged, { kind: 'low' }, { priority: 'low' });
    const lowStarved = await sluice.enqueue(starved, { kind: 'low' }, { priority: 'low' });

    // A steady supply of high jobs in both queues: topped up to 40 waiting
    // every 20 ms, while one slot drains each queue at ~10 ms per job. The
    // assertions are orders in the database; how long the low job waits is
    // measured by the bench (packages/bench, scenario "aging").
    let feeding = true;
    const feed = async (job: typeof aged | typeof starved) => {
      while (feeding) {
        const waiting = await count(
          db.pool,
          `SELECT count(*) n FROM sluice.jobs WHERE queue = $1 AND state = 'available' AND priority >= 10`,
          [job.queue],
        );
        // A deep top-up, so the queue never runs dry even on a loaded machine.
        if (waiting < 40) await sluice.enqueueMany(job, Array.from({ length: 40 - waiting }, () => ({ kind: 'high' })), { priority: 'high' });
        await sleep(20);
      }
    };
    const feeders = [feed(aged), feed(starved)];
    const handler = async () => sleep(10);
    // The ager runs every pollIntervalMs.
    await start({ handlers: [aged.handle(handler)], concurrency: 1, prefetch: 0, pollIntervalMs: 50 }).start();
    await start({ handlers: [starved.handle(handler)], concurrency: 1, prefetch: 0, pollIntervalMs: 50 }).start();

    try {
      await waitUntil(async () => (await sluice.getJob(lowAged)).state === 'completed', { timeoutMs: 20_000, what: 'aged low job completed' });
    } finally {
      feeding = false;
      await Promise.all(feeders);
    }

    const done = await sluice.getJob(lowAged);
    // It aged from -10 up to at least high's level before it could win a claim.
    expect(done.priority).toBeGreaterThanOrEqual(10);
    // High jobs enqueued before it was claimed were still waiting: it did not
    // simply run because the queue ran dry.
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM (
         SELECT created_at, attempted_at FROM sluice.jobs WHERE queue = 'pw.aging' AND payload->>'kind' = 'high'
         UNION ALL
         SELECT created_at, attempted_at FROM sluice.job_history WHERE queue = 'pw.aging' AND payload->>'kind' = 'high'
       ) h
       WHERE h.created_at < $1 AND (h.attempted_at IS NULL OR h.attempted_at > $1)`,
      [done.attemptedAt],
    );
    expect(rows[0].n).toBeGreaterThan(0);
    // Meanwhile the low job of the queue without aging never ran, though
    // many high jobs enqueued after it did.
    const control = await sluice.getJob(lowStarved);
    expect(control.state).toBe('available');
    expect(control.priority).toBe(-10);
    expect(
      await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'pw.starve' AND created_at > $1`, [control.createdAt]),
    ).toBeGreaterThan(50);
  });

  it('a job enqueued while the leader finds nothing to age gains its first step after about one period, not the idle sleep', async () => {
    const AGING_MS = 200;
    const job = defineJob({ name: 'prio.prompt', queue: 'pw.prompt', schema: z.object({}) });
    const other = defineJob({ name: 'prio.elsewhere', queue: 'pw.elsewhere', schema: z.object({}) });
    await sluice.queues.configure('pw.prompt', { agingAfterMs: AGING_MS });
    // The leader's ager looks once at start, finds nothing old enough, and sleeps.
    const w = start({ handlers: [other.handle(async () => {})], pollIntervalMs: 50 });
    await w.start();
    await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.workers`)) > 0, { what: 'worker registered' });
    await new Promise((r) => setTimeout(r, 300));
    const id = await sluice.enqueue(job, {}, { priority: 'low' });
    // Nothing claims pw.prompt; the ager alone moves it. The old idle sleep
    // (10 s while notifications arrive) would keep it at -10 past this wait.
    await waitUntil(async () => (await sluice.getJob(id)).priority > -10, { what: 'first aging step', timeoutMs: 5_000 });
    expect((await sluice.getJob(id)).state).toBe('available');
  });

  it('an aged job still counts its wait from when it first became due: oldest waiting, the wait metrics and its history row', async () => {
    const job = defineJob({ name: 'prio.waited', queue: 'pw.waited', schema: z.object({}) });
    await sluice.queues.configure('pw.waited', { agingAfterMs: 60_000 });
    const id = await sluice.enqueue(job, {}, { priority: 'low' });
    const cancelled = await sluice.enqueue(job, {}, { priority: 'low' });
    // Due ten minutes ago; the ager then moves them up a step per minute waited.
    await db.pool.query(`UPDATE sluice.jobs SET run_at = now() - interval '10 minutes' WHERE id = ANY($1::bigint[])`, [[id, cancelled]]);
    for (let i = 0; i < 12; i++) await db.pool.query('SELECT sluice.age_priorities()');
    expect((await sluice.getJob(id)).priority).toBe(0);
    const waitedMs = async (sql: string) => Number((await db.pool.query<{ ms: number }>(sql)).rows[0]!.ms);
    expect(await waitedMs(`SELECT extract(epoch FROM now() - sluice.oldest_waiting_at('pw.waited')) * 1000 AS ms`)).toBeGreaterThan(590_000);
    await sluice.cancel(cancelled);
    expect(await waitedMs(`SELECT extract(epoch FROM finished_at - run_at) * 1000 AS ms FROM sluice.job_history WHERE id = ${cancelled}`)).toBeGreaterThan(590_000);

    const { rows } = await db.pool.query<{ id: string; attempt: number; lease: string }>(
      `SELECT id, attempt, lease FROM sluice.claim(ARRAY['pw.waited'], ARRAY[1], 'pw-waited-worker', 60000)`,
    );
    expect(rows.map((r) => Number(r.id))).toEqual([id]);
    await db.pool.query(`SELECT sluice.job_complete_many(ARRAY[$1]::bigint[], ARRAY[$2]::integer[], NULL, NULL, 'pw-waited-worker', ARRAY[$3]::bigint[])`, [
      rows[0]!.id,
      rows[0]!.attempt,
      rows[0]!.lease,
    ]);
    expect(await waitedMs(`SELECT max(wait_ms_max) AS ms FROM sluice.metrics_minutely WHERE queue = 'pw.waited'`)).toBeGreaterThan(590_000);
    expect(await waitedMs(`SELECT extract(epoch FROM attempted_at - run_at) * 1000 AS ms FROM sluice.job_history WHERE id = ${id}`)).toBeGreaterThan(590_000);
  });

  it('an aged job that fails counts its wait from when it first became due; a retry is due anew', async () => {
    const job = defineJob({ name: 'prio.failed', queue: 'pw.failed', schema: z.object({}) });
    await sluice.queues.configure('pw.failed', { agingAfterMs: 60_000 });
    const ids = [await sluice.enqueue(job, {}, { priority: 'low' }), await sluice.enqueue(job, {}, { priority: 'low' })];
    await db.pool.query(`UPDATE sluice.jobs SET run_at = now() - interval '10 minutes' WHERE id = ANY($1::bigint[])`, [ids]);
    for (let i = 0; i < 12; i++) await db.pool.query('SELECT sluice.age_priorities()');
    const { rows } = await db.pool.query<{ id: string; attempt: number; lease: string }>(
      `SELECT id, attempt, lease FROM sluice.claim(ARRAY['pw.failed'], ARRAY[2], 'pw-failed-worker', 60000) ORDER BY id`,
    );
    expect(rows.map((r) => Number(r.id))).toEqual(ids);
    const error = { attempt: 1, at: new Date().toISOString(), kind: 'error', name: 'Error', message: 'planned' };
    // The first retries (after a delay), the second dies.
    await db.pool.query(
      `SELECT * FROM sluice.job_fail_many($1::bigint[], $2::integer[], $3::jsonb[], ARRAY[false, true], ARRAY[60000, NULL]::integer[], NULL, 'pw-failed-worker', $4::bigint[])`,
      [rows.map((r) => r.id), rows.map((r) => r.attempt), [error, error], rows.map((r) => r.lease)],
    );
    const ms = async (sql: string, values: unknown[] = []) => Number((await db.pool.query<{ ms: number }>(sql, values)).rows[0]!.ms);
    expect(await ms(`SELECT max(wait_ms_max) AS ms FROM sluice.metrics_minutely WHERE queue = 'pw.failed'`)).toBeGreaterThan(590_000);
    expect(await ms(`SELECT extract(epoch FROM attempted_at - run_at) * 1000 AS ms FROM sluice.dead_jobs WHERE id = $1`, [ids[1]])).toBeGreaterThan(590_000);
    const retried = await db.pool.query<{ state: string; ready_at: Date | null }>(`SELECT state, ready_at FROM sluice.jobs WHERE id = $1`, [ids[0]]);
    expect(retried.rows[0]).toEqual({ state: 'scheduled', ready_at: null });
  });

  it('aging never lifts a job above critical (20)', async () => {
    const job = defineJob({ name: 'prio.cap', queue: 'pw.cap', schema: z.object({}) });
    await sluice.queues.configure('pw.cap', { agingAfterMs: 1_000 });
    const id = await sluice.enqueue(job, {}, { priority: 'low' });
    // As if it had waited an hour; each round ages it by one step.
    await db.pool.query(`UPDATE sluice.jobs SET run_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    for (let i = 0; i < 45; i++) await db.pool.query('SELECT sluice.age_priorities()');
    expect((await sluice.getJob(id)).priority).toBe(20);
  });
});

describe('weighted queues', () => {
  // The tolerance on every measured share, in percentage points.
  const TOLERANCE_PP = 7;

  it('one claim of several queues runs each queue in proportion to its rows, higher priorities first, each queue in its own order', () => {
    const rows = [
      ...Array.from({ length: 6 }, (_, i) => ({ queue: 'a', priority: 0, n: i })),
      ...Array.from({ length: 3 }, (_, i) => ({ queue: 'b', priority: 0, n: i })),
      { queue: 'c', priority: 5, n: 0 },
    ];
    const order = interleaveByQueue(rows);
    expect(order.map((r) => `${r.queue}${r.n}`)).toEqual(['c0', 'a0', 'a1', 'b0', 'a2', 'a3', 'b1', 'a4', 'a5', 'b2']);
    const one = rows.filter((r) => r.queue === 'a');
    expect(interleaveByQueue(one)).toBe(one);
  });

  it('a worker serving queues weighted 100/50/10 shares its slots 62.5/31.25/6.25 % while all have work', async () => {
    const qs = ['wt.a', 'wt.b', 'wt.c'];
    const jobs = qs.map((q) => defineJob({ name: `job.${q}`, queue: q, schema: z.object({ n: z.number() }) }));
    await sluice.queues.configure('wt.a', { weight: 100 });
    await sluice.queues.configure('wt.b', { weight: 50 });
    await sluice.queues.configure('wt.c', { weight: 10 });
    // Deep queues: a worker of jobs this fast claims far ahead (its prefetch
    // follows their pace), and runs many more before the wait below notices.
    for (const j of jobs) await sluice.enqueueMany(j, Array.from({ length: 3_000 }, (_, n) => ({ n })));

    const MEASURED = 240;
    const order: string[] = [];
    const w = start({
      handlers: jobs.map((j) => j.handle(async (_p, ctx) => void order.push(ctx.job.queue))),
      concurrency: 8,
    });
    await w.start();
    await waitUntil(() => order.length >= MEASURED, { what: `${MEASURED} jobs` });
    await w.stop();
    // Every queue still had work when the measured jobs ran.
    for (const q of qs) {
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = $1 AND state = 'available'`, [q])).toBeGreaterThan(0);
    }
    const measured = shares(order.slice(0, MEASURED), qs);
    console.log(`weights 100/50/10, first ${MEASURED} jobs: ${JSON.stringify(measured)}`);
    expect(Math.abs(measured['wt.a']! - 62.5)).toBeLessThanOrEqual(TOLERANCE_PP);
    expect(Math.abs(measured['wt.b']! - 31.25)).toBeLessThanOrEqual(TOLERANCE_PP);
    expect(Math.abs(measured['wt.c']! - 6.25)).toBeLessThanOrEqual(TOLERANCE_PP);
  });

  it('an idle queue\'s weight goes to the busy ones: 100(empty)/50/10 → 83.3/16.7 %, every slot busy', async () => {
    const qs = ['wi.a', 'wi.b', 'wi.c'];
    const jobs = qs.map((q) => defineJob({ name: `job.${q}`, queue: q, schema: z.object({ n: z.number() }) }));
    await sluice.queues.configure('wi.a', { weight: 100 });
    await sluice.queues.configure('wi.b', { weight: 50 });
    await sluice.queues.configure('wi.c', { weight: 10 });
    await sluice.enqueueMany(jobs[1]!, Array.from({ length: 300 }, (_, n) => ({ n })));
    await sluice.enqueueMany(jobs[2]!, Array.from({ length: 300 }, (_, n) => ({ n })));

    const MEASURED = 180;
    const CONCURRENCY = 8;
    const order: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const w = start({
      handlers: jobs.map((j) =>
        j.handle(async (_p, ctx) => {
          order.push(ctx.job.queue);
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          await sleep(5);
          inFlight--;
        }),
      ),
      concurrency: CONCURRENCY,
    });
    await w.start();
    await waitUntil(() => order.length >= MEASURED, { what: `${MEASURED} jobs` });
    await w.stop();
    for (const q of ['wi.b', 'wi.c']) {
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = $1 AND state = 'available'`, [q])).toBeGreaterThan(0);
    }
    const measured = shares(order.slice(0, MEASURED), qs);
    console.log(`weights 100(idle)/50/10, first ${MEASURED} jobs: ${JSON.stringify(measured)}`);
    expect(measured['wi.a']).toBe(0);
    expect(Math.abs(measured['wi.b']! - (100 * 50) / 60)).toBeLessThanOrEqual(TOLERANCE_PP);
    expect(Math.abs(measured['wi.c']! - (100 * 10) / 60)).toBeLessThanOrEqual(TOLERANCE_PP);
    // The empty queue's share did not leave slots idle.
    expect(maxInFlight).toBe(CONCURRENCY);
  });

  it('a worker whose other queue is empty refills as its buffer runs low, not at the poll', async () => {
    const busy = defineJob({ name: 'we.busy', queue: 'we-busy', schema: z.object({}) });
    const empty = defineJob({ name: 'we.empty', queue: 'we-empty', schema: z.object({}) });
    await sluice.enqueueMany(busy, Array.from({ length: 100 }, () => ({})));
    let done = 0;
    const w = start({
      concurrency: 2,
      prefetch: 4,
      pollIntervalMs: 60_000,
      handlers: [busy.handle(async () => void (done += 1)), empty.handle(async () => {})],
    });
    await w.start();
    // The empty queue came back short and the busy one took its part in a
    // second claim, which filled the room; the worker still took itself for
    // drained and waited for the poll (or a notification) at every refill.
    await waitUntil(() => done === 100, { timeoutMs: 10_000, what: '100 jobs of the busy queue' });
  });
});

describe('a limited queue beside a queue without limits', () => {
  it('the second claim of a fetch (a short queue\'s leftover) claims limited jobs only into slots still free after the first claim\'s jobs started', async () => {
    const busy = defineJob({ name: 'rv.busy', queue: 'rv-busy', schema: z.object({}) });
    const limited = defineJob({ name: 'rv.limited', queue: 'rv-limited', schema: z.object({}) });
    await sluice.queues.configure('rv-busy', { weight: 3 });
    await sluice.queues.configure('rv-limited', { weight: 1, concurrency: 4 });
    // The unlimited queue has 2 jobs (it comes back short of its share of 6);
    // the limited one has plenty.
    await sluice.enqueueMany(busy, [{}, {}]);
    await sluice.enqueueMany(limited, Array.from({ length: 6 }, () => ({})));
    const hold = gate();
    const startedOn = { w1: 0, w2: 0 };
    const w1 = suite.startWorker({
      concurrency: 4,
      prefetch: 4,
      handlers: [
        busy.handle(async () => {
          startedOn.w1 += 1;
          await hold.wait;
        }),
        limited.handle(async () => {
          startedOn.w1 += 1;
          await hold.wait;
        }),
      ],
    });
    try {
      await w1.start();
      // Every slot of w1 busy: 2 jobs of each queue.
      await waitUntil(() => startedOn.w1 === 4, { what: 'w1 running 4 jobs' });
      // An idle worker of the limited queue alone: the limit (4) leaves room
      // for two more jobs of it, which nobody runs.
      const w2 = suite.startWorker({
        concurrency: 2,
        handlers: [
          limited.handle(async () => {
            startedOn.w2 += 1;
            await hold.wait;
          }),
        ],
      });
      await w2.start();
      let seen = '';
      const ran = await waitUntil(
        async () => {
          const running = await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'rv-limited' AND state = 'running'`);
          seen = JSON.stringify({ limitedRunningInDb: running, handlersW1: startedOn.w1, handlersW2: startedOn.w2, w1: w1.load });
          return startedOn.w2 > 0 ? 'w2 ran' : null;
        },
        { timeoutMs: 8_000, what: 'w2 to run a limited job' },
      ).catch(() => `w2 never ran a limited job: ${seen}`);
      // w2 runs the limited jobs w1 has no slot for; claimed into w1's full
      // slots, they would wait in its buffer, counted as running by the limit.
      expect(ran).toBe('w2 ran');
    } finally {
      hold.open();
    }
  }, 30_000);

  // A limited queue's jobs are claimed only into slots where they start at
  // once (worker/fetcher.ts); the other queue's buffer must neither starve it
  // nor hold its jobs back.
  it('a limited queue is claimed while the other queue of its worker has a backlog, not only once that backlog is all claimed', async () => {
    const busy = defineJob({ name: 'st.busy', queue: 'st-busy', schema: z.object({}) });
    const limited = defineJob({ name: 'st.limited', queue: 'st-limited', schema: z.object({}) });
    // A limit far above anything this test runs: only the fact of a limit matters.
    await sluice.queues.configure('st-limited', { concurrency: 100 });
    await sluice.enqueueMany(busy, Array.from({ length: 120 }, () => ({})));
    let busyDone = 0;
    let busyWaitingAtLimitedStart: number | null = null;
    const w = start({
      concurrency: 2,
      prefetch: 4,
      handlers: [
        busy.handle(async () => {
          await sleep(40);
          busyDone += 1;
        }),
        limited.handle(async () => {
          busyWaitingAtLimitedStart = await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'st-busy' AND state = 'available'`);
        }),
      ],
    });
    await w.start();
    await waitUntil(() => busyDone >= 6, { what: 'the worker busy with the first queue' });
    const id = await sluice.enqueue(limited, {});
    await waitUntil(() => busyWaitingAtLimitedStart !== null, { timeoutMs: 30_000, what: 'the limited job started' });
    // A refill comes with every slot busy and the other queue's jobs in the
    // buffer: the limited queue's share was cut to nothing each time, and the
    // limited job waited until the 110-odd jobs of the other queue had all
    // been claimed (weights 1:1).
    expect(busyWaitingAtLimitedStart).toBeGreaterThan(50);
    await waitUntil(async () => (await sluice.getJob(id)).state === 'completed', { what: 'the limited job completed' });
  }, 60_000);

  it("a limited queue's job claimed with another queue's job starts first: it never waits in the buffer holding the limit's slot", async () => {
    const slow = defineJob({ name: 'oc.slow', queue: 'oc-free', schema: z.object({}) });
    const limited = defineJob({ name: 'oc.limited', queue: 'oc-limited', schema: z.object({}) });
    await sluice.queues.configure('oc-limited', { concurrency: 1 });
    const limitedRan = gate();
    let limitedRanDuringSlow: boolean | null = null;
    let bufferedOnW1 = -1;
    const limitedHandler = limited.handle(async () => limitedRan.open());
    // The slow job is oldest; it waits until a limited job starts (6 s at most).
    await sluice.enqueue(slow, {});
    const [first] = await sluice.enqueueMany(limited, [{}, {}]);
    const w1 = start({
      concurrency: 1,
      handlers: [
        slow.handle(async () => {
          const ran = await Promise.race([limitedRan.wait.then(() => true), sleep(6_000).then(() => false)]);
          bufferedOnW1 = w1.load.buffered;
          limitedRanDuringSlow = ran;
        }),
        limitedHandler,
      ],
    });
    await w1.start();
    // One claim takes the slow job and a limited one (no other worker yet).
    await waitUntil(async () => (await sluice.getJob(first!)).state !== 'available', { what: 'a limited job claimed by the first worker' });
    // An idle worker of the limited queue alone.
    await start({ concurrency: 1, handlers: [limitedHandler] }).start();
    await waitUntil(() => limitedRanDuringSlow !== null, { timeoutMs: 20_000, what: 'the slow job ended' });
    // The limited job waited in w1's buffer behind the slow one, running as
    // far as the limit counts: the queue's one slot was held, and the idle
    // worker could not claim the other job for the whole 6 s.
    expect({ limitedRanDuringSlow, bufferedOnW1 }).toEqual({ limitedRanDuringSlow: true, bufferedOnW1: 0 });
  }, 60_000);
});

describe('pause and resume', () => {
  /** A job whose runs are recorded as they start, and held until released when their payload asks. */
  /** The jobs once no longer running: a paused queue's jobs leave the buffer before their hand-back is written. */
  function handedBack(ids: number[]) {
    return waitUntil(
      async () => {
        const jobs = await Promise.all(ids.map((id) => sluice.getJob(id)));
        return jobs.every((j) => j.state !== 'running') ? jobs : null;
      },
      { what: 'the hand-back written' },
    );
  }

  function holdingJob(name: string, queue: string) {
    const job = defineJob({ name, queue, schema: z.object({ hold: z.boolean() }) });
    const release = gate();
    const started: number[] = [];
    const handler = job.handle(async (p, ctx) => {
      started.push(ctx.job.id);
      if (p.hold) await release.wait;
    });
    return { job, handler, release, started };
  }

  /**
   * Pauses `queue` while sluice.release_leases is missing, so the worker's
   * hand-back of its buffered jobs fails; once they are out of its buffer,
   * runs `meanwhile`, then puts the function back.
   */
  async function pauseWithHandBackFailing(w: Worker, queue: string, meanwhile: () => Promise<void>): Promise<void> {
    await db.pool.query(`ALTER FUNCTION sluice.release_leases(text, bigint[], integer[], bigint[]) RENAME TO release_leases_away`);
    try {
      await sluice.queues.pause(queue);
      await waitUntil(() => w.load.buffered === 0, { what: 'the buffered jobs taken out of the buffer' });
      await meanwhile();
    } finally {
      await db.pool.query(`ALTER FUNCTION sluice.release_leases_away(text, bigint[], integer[], bigint[]) RENAME TO release_leases`);
    }
  }

  it('a paused queue gets no new claims while its running jobs finish; resume runs the rest', async () => {
    const { job, handler, release, started } = holdingJob('pause.job', 'pr.a');
    const pool = new ClaimWatchingPool(db.url);
    const w = start({
      pool,
      handlers: [handler],
      concurrency: 2,
      pollIntervalMs: 50,
    });
    try {
      await w.start();
      const running = await sluice.enqueueMany(job, [{ hold: true }, { hold: true }]);
      await waitUntil(() => started.length === 2, { what: 'two jobs running' });

      await sluice.queues.pause('pr.a');
      const { rows: q } = await db.pool.query(`SELECT paused FROM sluice.queues WHERE name = 'pr.a'`);
      expect(q[0].paused).toBe(true);
      const waiting = await sluice.enqueueMany(job, [{ hold: false }, { hold: false }, { hold: false }]);

      release.open();
      await waitUntil(async () => (await Promise.all(running.map((id) => sluice.getJob(id)))).every((j) => j.state === 'completed'), {
        what: 'running jobs finished while paused',
      });
      // With free slots the worker looks for work and is given none.
      await pool.nextEmptyClaim();
      for (const id of waiting) {
        const j = await sluice.getJob(id);
        expect(j.state).toBe('available');
        expect(j.attempt).toBe(0);
      }
      expect(started).toHaveLength(2);

      await sluice.queues.resume('pr.a');
      await waitUntil(async () => (await Promise.all(waiting.map((id) => sluice.getJob(id)))).every((j) => j.state === 'completed'), {
        what: 'jobs run after resume',
      });
    } finally {
      await w.stop();
      await pool.end();
    }
  });

  // docs/operations.md: "running jobs finish; nothing new starts", jobs the worker claimed before the pause included.
  it('a pause hands back the jobs a worker had buffered: none of them starts, their attempt is given back, resume runs them', async () => {
    const { job, handler, release, started } = holdingJob('pause.buffered', 'pr.c');
    const pool = new ClaimWatchingPool(db.url);
    // The worker leads and beats once a minute: only the pause's notice can reach it within the test.
    const w = start({
      pool,
      handlers: [handler],
      concurrency: 1,
      prefetch: 3,
      heartbeatIntervalMs: 60_000,
      workerDeadAfterMs: 180_000,
    });
    try {
      const ids = await sluice.enqueueMany(job, [{ hold: true }, { hold: false }, { hold: false }, { hold: false }]);
      await w.start();
      await waitUntil(() => started.length === 1 && w.load.buffered === 3, { what: '1 running, 3 buffered' });

      await sluice.queues.pause('pr.c');
      await waitUntil(() => w.load.buffered === 0, { what: 'the buffered jobs taken out of the buffer' });
      const waiting = await handedBack(ids.slice(1));
      expect(waiting.map((j) => [j.state, j.attempt])).toEqual([['available', 0], ['available', 0], ['available', 0]]);

      release.open();
      await waitUntil(async () => (await sluice.getJob(ids[0]!)).state === 'completed', { what: 'the running job finished' });
      // With its slot free the worker looks for work and is given none.
      await pool.nextEmptyClaim();
      const states = await Promise.all(ids.slice(1).map(async (id) => (await sluice.getJob(id)).state));
      expect({ started: started.length, states }).toEqual({ started: 1, states: ['available', 'available', 'available'] });

      await sluice.queues.resume('pr.c');
      await waitUntil(async () => (await Promise.all(ids.map((id) => sluice.getJob(id)))).every((j) => j.state === 'completed'), {
        what: 'jobs run after resume',
      });
    } finally {
      await w.stop();
      await pool.end();
    }
  });

  // A claim sent before the pause and answered after the beat that found it:
  // its jobs started, where the buffered ones of the same queue went back.
  it('jobs of a claim answered after the beat that found the pause are handed back, not started', async () => {
    const { job, handler, release, started } = holdingJob('pause.inflight', 'pr.g');
    const pool = new ClaimWatchingPool(db.url);
    const w = start({ pool, handlers: [handler], concurrency: 2, heartbeatIntervalMs: 200, workerDeadAfterMs: 5_000 });
    const held = pool.holdNextClaim();
    try {
      await w.start();
      const [id] = await sluice.enqueueMany(job, [{ hold: false }]);
      await held.arrived;
      expect((await sluice.getJob(id!)).state).toBe('running');

      await sluice.queues.pause('pr.g');
      // Two beats that began after the pause: the first one's answer has been acted on.
      for (let i = 0; i < 2; i++) {
        const { rows } = await db.pool.query<{ at: Date }>(`SELECT clock_timestamp() AS at`);
        await waitUntil(
          async () => (await db.pool.query(`SELECT 1 FROM sluice.workers WHERE id = $1 AND heartbeat_at > $2`, [w.id, rows[0]!.at])).rowCount === 1,
          { what: 'a beat after the pause' },
        );
      }
      held.release();
      await waitUntil(async () => (await sluice.getJob(id!)).state === 'available', { what: 'the claimed job handed back' });
      expect({ started: started.length, attempt: (await sluice.getJob(id!)).attempt }).toEqual({ started: 0, attempt: 0 });

      await sluice.queues.resume('pr.g');
      await waitUntil(async () => (await sluice.getJob(id!)).state === 'completed', { what: 'the job run after resume' });
      expect(started).toEqual([id]);
    } finally {
      held.release();
      release.open();
      await w.stop();
      await pool.end();
    }
  });

  // A hand-back that failed (a connection given up, a server restarting)
  // took the jobs out of the buffer all the same: no beat extended their
  // leases any more, and the rescuer took them as a crash, an attempt spent.
  it('a hand-back that fails keeps the jobs held; the next beat hands them back, their attempt given back', async () => {
    const { job, handler, release, started } = holdingJob('pause.failing', 'pr.f');
    const w = start({ handlers: [handler], concurrency: 1, prefetch: 3, heartbeatIntervalMs: 200, workerDeadAfterMs: 1_000 });
    try {
      const ids = await sluice.enqueueMany(job, [{ hold: true }, { hold: false }, { hold: false }, { hold: false }]);
      await w.start();
      await waitUntil(() => started.length === 1 && w.load.buffered === 3, { what: '1 running, 3 buffered' });
      // Three times the lease: a job no beat extended is rescued meanwhile.
      await pauseWithHandBackFailing(w, 'pr.f', () => new Promise((r) => setTimeout(r, 3_000)));
      await waitUntil(async () => (await Promise.all(ids.slice(1).map((id) => sluice.getJob(id)))).every((j) => j.state === 'available'), {
        what: 'the jobs handed back',
      });
      const back = await Promise.all(ids.slice(1).map((id) => sluice.getJob(id)));
      expect(back.map((j) => [j.state, j.attempt, j.errors.length])).toEqual([
        ['available', 0, 0],
        ['available', 0, 0],
        ['available', 0, 0],
      ]);
      expect(started).toHaveLength(1);
      release.open();
      await sluice.queues.resume('pr.f');
      await waitUntil(async () => (await Promise.all(ids.map((id) => sluice.getJob(id)))).every((j) => j.state === 'completed'), {
        what: 'jobs run after resume',
      });
    } finally {
      release.open();
      await w.stop();
    }
  });

  // A hand-back given up by the client may still have committed on the
  // server: the job is then another worker's, and the beat says so.
  it('a job held for a hand-back that the beat reports lost is let go: resuming the queue does not start it here', async () => {
    const { job, handler, release, started } = holdingJob('pause.lost', 'pr.l');
    const w = start({ handlers: [handler], concurrency: 1, prefetch: 3, heartbeatIntervalMs: 200, workerDeadAfterMs: 3_000 });
    try {
      const ids = await sluice.enqueueMany(job, [{ hold: true }, { hold: false }, { hold: false }, { hold: false }]);
      await w.start();
      await waitUntil(() => started.length === 1 && w.load.buffered === 3, { what: '1 running, 3 buffered' });
      const taken = ids[1]!;
      await pauseWithHandBackFailing(w, 'pr.l', async () => {
        // As if its hand-back had committed after all, and another worker claimed it.
        await db.pool.query(
          `UPDATE sluice.jobs SET attempt = attempt + 1, locked_by = 'someone-else', attempted_at = clock_timestamp(),
             locked_until = now() + interval '1 minute' WHERE id = $1`,
          [taken],
        );
        // Two beats: the one after the change reports the job lost.
        await new Promise((r) => setTimeout(r, 600));
      });
      release.open();
      await sluice.queues.resume('pr.l');
      await waitUntil(async () => (await Promise.all([ids[0]!, ...ids.slice(2)].map((id) => sluice.getJob(id)))).every((j) => j.state === 'completed'), {
        what: 'the other jobs run after resume',
      });
      await new Promise((r) => setTimeout(r, 500));
      expect(started).not.toContain(taken);
      expect((await sluice.getJob(taken)).state).toBe('running');
    } finally {
      release.open();
      await w.stop();
    }
  });

  it("a pause the worker was not told of (its notice lost) still empties the worker's buffer, at its next heartbeat", async () => {
    const { job, handler, release, started } = holdingJob('pause.unnoticed', 'pr.d');
    const w = start({
      handlers: [handler],
      concurrency: 1,
      prefetch: 2,
      heartbeatIntervalMs: 200,
    });
    try {
      const ids = await sluice.enqueueMany(job, [{ hold: true }, { hold: false }, { hold: false }]);
      await w.start();
      await waitUntil(() => started.length === 1 && w.load.buffered === 2, { what: '1 running, 2 buffered' });
      // Paused with no notice sent at all: as if it were lost on the way.
      const paused = await db.pool.query(`UPDATE sluice.queues SET paused = true WHERE name = 'pr.d'`);
      expect(paused.rowCount).toBe(1);
      await waitUntil(() => w.load.buffered === 0, { what: 'the buffered jobs taken out of the buffer' });
      release.open();
      await waitUntil(async () => (await sluice.getJob(ids[0]!)).state === 'completed', { what: 'the running job finished' });
      const waiting = await handedBack(ids.slice(1));
      expect({ started: started.length, waiting: waiting.map((j) => [j.state, j.attempt]) }).toEqual({
        started: 1,
        waiting: [['available', 0], ['available', 0]],
      });
    } finally {
      await w.stop();
    }
  });

  it('resume (here from SQL, after a pause from the CLI) wakes a worker that polls once an hour', async () => {
    // Only a notification can wake this worker within the test: how fast it
    // wakes is measured by the bench (packages/bench, scenario "resume").
    const POLL_MS = 3_600_000;
    const job = defineJob({ name: 'resume.job', queue: 'pr.b', schema: z.object({}) });
    const out: string[] = [];
    expect(await cli(['queues', 'pause', 'pr.b', '--database-url', db.url], (s) => out.push(s), (s) => out.push(s))).toBe(0);
    expect((await db.pool.query(`SELECT paused FROM sluice.queues WHERE name = 'pr.b'`)).rows[0].paused).toBe(true);

    // The job waits before the worker starts, so the worker's first look finds it, in a paused queue.
    const id = await sluice.enqueue(job, {});
    const pool = new ClaimWatchingPool(db.url);
    const w = start({ pool, handlers: [job.handle(async () => {})], pollIntervalMs: POLL_MS });
    try {
      const looked = pool.nextEmptyClaim();
      await w.start();
      await looked;
      expect((await sluice.getJob(id)).state).toBe('available');

      await db.pool.query(`SELECT sluice.queue_configure('pr.b', '{"paused": false}')`);
      await waitUntil(async () => (await sluice.getJob(id)).state === 'completed', { timeoutMs: 10_000, what: 'job run after resume' });
    } finally {
      await w.stop();
      await pool.end();
    }
  });
});

describe('bad input to the new options names the option and writes nothing', () => {
  const job = defineJob({ name: 'bad.prio', queue: 'pw.bad', schema: z.object({}) });

  it.each([
    ['options.priority', { priority: 'urgent' }],
    ['options.priority', { priority: 'HIGH' }],
    ['options.priority', { priority: 1.5 }],
  ])('enqueue %s %j', async (field, options) => {
    const err = await sluice.enqueue(job, {}, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'pw.bad'`)).toBe(0);
  });

  it('defineJob with an unknown priority name', () => {
    const err = (() => {
      try {
        defineJob({ name: 'bad.def', schema: z.object({}), priority: 'urgent' as never });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('defineJob.priority');
  });

  it.each([
    ['settings.weight', { weight: 0 }],
    ['settings.weight', { weight: 2.5 }],
    ['settings.weight', { weight: null }],
    ['settings.agingAfterMs', { agingAfterMs: 0 }],
    ['settings.agingAfterMs', { agingAfterMs: '100' }],
    ['settings.paused', { paused: 'yes' }],
    ['settings', { wieght: 5 }],
  ])('queues.configure %s %j', async (field, settings) => {
    const err = await sluice.queues.configure('pw.badq', settings as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'pw.badq'`)).toBe(0);
  });

  it('pause of a badly named queue', async () => {
    const err = await sluice.queues.pause('no spaces allowed').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('queue');
  });

  it('SQL queue_configure refuses an unknown setting and a zero weight, writing nothing', async () => {
    await expect(db.pool.query(`SELECT sluice.queue_configure('pw.sqlbad', '{"wieght": 5}')`)).rejects.toMatchObject({ code: '22023' });
    await expect(db.pool.query(`SELECT sluice.queue_configure('pw.sqlbad', '{"weight": 0}')`)).rejects.toMatchObject({ code: '22023' });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'pw.sqlbad'`)).toBe(0);
  });
});
