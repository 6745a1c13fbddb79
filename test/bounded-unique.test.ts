// Issue 6, points 6-7: bounded queues (reject, drop_oldest, drop_newest),
// also under parallel enqueuers, and unique jobs (while live, within a
// window after completion), also under a race of parallel enqueuers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  JobFailedError,
  QueueFullError,
  Sluice,
  ValidationError,
  defineJob,
  type JobDefinition,
} from '../packages/sluice/src/index.js';
import { count, waitUntil, type TestDb } from './helpers/db.js';
import { rejections, validation } from './helpers/rejects.js';
import { Sessions, lockWaitOrSettled } from './helpers/sessions.js';
import { useSuite } from './helpers/suite.js';

const suite = useSuite({ pollIntervalMs: 100, runScheduler: false });
let db: TestDb;
let sluice: Sluice;
const PARALLEL = 8;
let clients: Sluice[] = [];

beforeAll(() => {
  ({ db, sluice } = suite);
  // Eight independent producers, each with its own connections.
  clients = Array.from({ length: PARALLEL }, () => new Sluice({ connectionString: db.url, poolSize: 2 }));
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

const start = suite.startWorker;
const { snapshot, expectRejected } = rejections(() => db.pool);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const payload = z.object({ n: z.number().int() });

async function depth(queue: string): Promise<number> {
  return count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = $1 AND state IN ('waiting', 'scheduled', 'available')`, [queue]);
}

/** Samples a queue's depth as often as it can until stopped; returns the largest seen. */
function sampleDepth(queue: string): { stop: () => Promise<number> } {
  let max = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      max = Math.max(max, await depth(queue));
      await sleep(1);
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

/** Every client enqueues `each` jobs one after another, all clients at once. */
async function race(job: JobDefinition<typeof payload>, each: number): Promise<PromiseSettledResult<number>[]> {
  const perClient = await Promise.all(
    clients.map(async (c, k) => {
      const out: PromiseSettledResult<number>[] = [];
      for (let i = 0; i < each; i++) {
        try {
          out.push({ status: 'fulfilled', value: await c.enqueue(job, { n: k * 1000 + i }) });
        } catch (reason) {
          out.push({ status: 'rejected', reason });
        }
      }
      return out;
    }),
  );
  return perClient.flat();
}

describe('bounded queues', () => {
  it('reject (the default): QueueFullError names the queue and nothing is written', async () => {
    const job = defineJob({ name: 'bq.reject', queue: 'bq.reject', schema: payload });
    await sluice.queues.configure('bq.reject', { maxDepth: 3 });
    await sluice.enqueueMany(job, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const err = await sluice.enqueue(job, { n: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect((err as QueueFullError).queue).toBe('bq.reject');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'bq.reject'`)).toBe(3);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'bq.reject'`)).toBe(0);
    // A batch that does not fit as a whole is refused as a whole.
    await sluice.queues.configure('bq.reject', { maxDepth: 4 });
    await expect(sluice.enqueueMany(job, [{ n: 5 }, { n: 6 }])).rejects.toBeInstanceOf(QueueFullError);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'bq.reject'`)).toBe(3);
    // From SQL too, with its own error code.
    await expect(db.pool.query(`SELECT sluice.enqueue_many('bq.reject', '[{"n":7},{"n":8}]', queue => 'bq.reject')`)).rejects.toMatchObject({ code: 'SLQ01' });
    // Removing the bound lets it in.
    await sluice.queues.configure('bq.reject', { maxDepth: null });
    await sluice.enqueueMany(job, [{ n: 5 }, { n: 6 }]);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'bq.reject'`)).toBe(5);
  });

  it('depth counts waiting and scheduled jobs, not running ones', async () => {
    const job = defineJob({ name: 'bq.depth', queue: 'bq.depth', schema: payload });
    await sluice.queues.configure('bq.depth', { maxDepth: 2 });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await start({ handlers: [job.handle(() => held)], concurrency: 1, prefetch: 0 }).start();
    const running = await sluice.enqueue(job, { n: 1 });
    await waitUntil(async () => (await sluice.getJob(running)).state === 'running', { what: 'running' });
    await sluice.enqueue(job, { n: 2 }, { delayMs: 60_000 });
    await sluice.enqueue(job, { n: 3 });
    await expect(sluice.enqueue(job, { n: 4 })).rejects.toBeInstanceOf(QueueFullError);
    release();
  });

  it('drop_oldest: the oldest waiting job moves to history as dropped, its waiter is told', async () => {
    const job = defineJob({ name: 'bq.oldest', queue: 'bq.oldest', schema: payload });
    await sluice.queues.configure('bq.oldest', { maxDepth: 3, overflow: 'drop_oldest' });
    const [a, b, c] = await sluice.enqueueMany(job, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const waited = sluice.waitFor(a!, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    const d = await sluice.enqueue(job, { n: 4 });
    expect(d).not.toBe(a);
    const { rows } = await db.pool.query(`SELECT id, state FROM sluice.job_history WHERE queue = 'bq.oldest'`);
    expect(rows).toEqual([{ id: String(a), state: 'dropped' }]);
    expect((await sluice.getJob(a!)).state).toBe('dropped');
    const live = await db.pool.query(`SELECT id FROM sluice.jobs WHERE queue = 'bq.oldest' ORDER BY id`);
    expect(live.rows.map((r) => Number(r.id))).toEqual([b, c, d]);
    const err = await waited;
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).state).toBe('dropped');
  });

  it('drop_newest: the new job is dropped and reported by getJob and waitFor; the queue keeps its jobs', async () => {
    const job = defineJob({ name: 'bq.newest', queue: 'bq.newest', schema: payload });
    await sluice.queues.configure('bq.newest', { maxDepth: 3, overflow: 'drop_newest' });
    const kept = await sluice.enqueueMany(job, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const d = await sluice.enqueue(job, { n: 4 });
    const dropped = await sluice.getJob(d);
    expect(dropped.state).toBe('dropped');
    expect(dropped.payload).toEqual({ n: 4 });
    await expect(sluice.waitFor(d, { timeoutMs: 5_000 })).rejects.toMatchObject({ name: 'JobFailedError', state: 'dropped' });
    const live = await db.pool.query(`SELECT id FROM sluice.jobs WHERE queue = 'bq.newest' ORDER BY id`);
    expect(live.rows.map((r) => Number(r.id))).toEqual(kept);
    // A batch over the bound keeps what fits and drops the rest of it.
    await sluice.queues.configure('bq.newest', { maxDepth: 5 });
    const more = await sluice.enqueueMany(job, [{ n: 5 }, { n: 6 }, { n: 7 }, { n: 8 }]);
    const states = await Promise.all(more.map(async (id) => (await sluice.getJob(id)).state));
    expect(states).toEqual(['available', 'available', 'dropped', 'dropped']);
    expect(await depth('bq.newest')).toBe(5);
  });

  it.each(['reject', 'drop_newest', 'drop_oldest'] as const)(
    `${PARALLEL} parallel enqueuers never push a %s queue over its bound of 20`,
    async (overflow) => {
      const queue = `bq.race.${overflow}`;
      const job = defineJob({ name: queue, queue, schema: payload });
      await sluice.queues.configure(queue, { maxDepth: 20, overflow });
      const sampler = sampleDepth(queue);
      const results = await race(job, 10);
      const maxSeen = await sampler.stop();

      expect(results).toHaveLength(PARALLEL * 10);
      expect(maxSeen).toBeLessThanOrEqual(20);
      expect(await depth(queue)).toBe(20);
      const accepted = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value);
      const rejected = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
      if (overflow === 'reject') {
        expect(accepted).toHaveLength(20);
        expect(rejected).toHaveLength(PARALLEL * 10 - 20);
        for (const e of rejected) expect(e).toBeInstanceOf(QueueFullError);
        expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = $1`, [queue])).toBe(0);
      } else {
        expect(rejected).toEqual([]);
        expect(new Set(accepted).size).toBe(PARALLEL * 10);
        expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = $1 AND state = 'dropped'`, [queue])).toBe(
          PARALLEL * 10 - 20,
        );
        const live = (await db.pool.query(`SELECT id FROM sluice.jobs WHERE queue = $1 ORDER BY id`, [queue])).rows.map((r) => Number(r.id));
        const sorted = [...accepted].sort((x, y) => x - y);
        // drop_oldest keeps the 20 newest; drop_newest the 20 first admitted.
        expect(live).toEqual(overflow === 'drop_oldest' ? sorted.slice(-20) : sorted.slice(0, 20));
      }
    },
  );
});

describe('unique jobs', () => {
  const uniq = defineJob({ name: 'uq.job', queue: 'uq', schema: payload });

  it('a second enqueue with a live uniqueKey returns the existing job; the key is per queue', async () => {
    const other = defineJob({ name: 'uq.other', queue: 'uq.other', schema: payload });
    const a = await sluice.enqueue(uniq, { n: 1 }, { uniqueKey: 'order-1' });
    const b = await sluice.enqueue(uniq, { n: 2 }, { uniqueKey: 'order-1' });
    expect(b).toBe(a);
    expect((await sluice.getJob(a)).payload).toEqual({ n: 1 });
    const c = await sluice.enqueue(other, { n: 3 }, { uniqueKey: 'order-1' });
    expect(c).not.toBe(a);
    // From SQL the same rule holds.
    const { rows } = await db.pool.query(`SELECT sluice.enqueue('uq.job', '{"n": 4}', queue => 'uq', unique_key => 'order-1') AS id`);
    expect(Number(rows[0].id)).toBe(a);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE unique_key = 'order-1'`)).toBe(2);
  });

  it(`under a race of ${PARALLEL} parallel enqueuers, every round yields exactly one job and everyone gets its id`, async () => {
    for (let round = 0; round < 10; round++) {
      const key = `race-${round}`;
      const ids = await Promise.all(
        clients.flatMap((c, k) => [0, 1, 2].map((i) => c.enqueue(uniq, { n: k * 10 + i }, { uniqueKey: key }))),
      );
      expect(new Set(ids).size, `round ${round}: ${JSON.stringify(ids)}`).toBe(1);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE unique_key = $1`, [key])).toBe(1);
      expect(ids[0]).toBeGreaterThan(0);
    }
  });

  it('a running job is still live; after it completes (no window) the key is free again', async () => {
    const job = defineJob({ name: 'uq.run', queue: 'uq.run', schema: payload });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    await start({ handlers: [job.handle(() => held)], concurrency: 1 }).start();
    const a = await sluice.enqueue(job, { n: 1 }, { uniqueKey: 'k' });
    await waitUntil(async () => (await sluice.getJob(a)).state === 'running', { what: 'running' });
    expect(await sluice.enqueue(job, { n: 2 }, { uniqueKey: 'k' })).toBe(a);
    release();
    await waitUntil(async () => (await sluice.getJob(a)).state === 'completed', { what: 'completed' });
    const b = await sluice.enqueue(job, { n: 3 }, { uniqueKey: 'k' });
    expect(b).not.toBe(a);
  });

  it('uniqueWindowMs (per enqueue or per queue) returns a job completed within the window, not after it', async () => {
    const job = defineJob({ name: 'uq.win', queue: 'uq.win', schema: payload });
    await start({ handlers: [job.handle(async () => ({ ok: true }))] }).start();
    const a = await sluice.enqueue(job, { n: 1 }, { uniqueKey: 'w' });
    await waitUntil(async () => (await sluice.getJob(a)).state === 'completed', { what: 'completed' });

    expect(await sluice.enqueue(job, { n: 2 }, { uniqueKey: 'w', uniqueWindowMs: 60_000 })).toBe(a);
    await sluice.queues.configure('uq.win', { uniqueWindowMs: 60_000 });
    expect(await sluice.enqueue(job, { n: 3 }, { uniqueKey: 'w' })).toBe(a);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'uq.win'`)).toBe(0);

    // A window that has passed (by the database clock) lets a new job in.
    await waitUntil(
      async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = $1 AND finished_at < now() - interval '400 ms'`, [a])) === 1,
      { what: 'window passed' },
    );
    const b = await sluice.enqueue(job, { n: 4 }, { uniqueKey: 'w', uniqueWindowMs: 300 });
    expect(b).not.toBe(a);
  });

  it('in a full queue (reject), enqueueing a key that is already live returns that job instead of QueueFullError', async () => {
    const job = defineJob({ name: 'uq.full', queue: 'uq.full', schema: payload });
    await sluice.queues.configure('uq.full', { maxDepth: 2 });
    const a = await sluice.enqueue(job, { n: 1 }, { uniqueKey: 'same' });
    await sluice.enqueue(job, { n: 2 });
    // Nothing new would be written: the idempotent retry gets the live job.
    const again = await sluice.enqueue(job, { n: 3 }, { uniqueKey: 'same' }).catch((e: unknown) => e);
    expect(again).toBe(a);
    expect(await depth('uq.full')).toBe(2);
  });

  it('a cancelled job with the key does not stand in for a new one, even within the window', async () => {
    const job = defineJob({ name: 'uq.cancel', queue: 'uq.cancel', schema: payload });
    const a = await sluice.enqueue(job, { n: 1 }, { uniqueKey: 'c' });
    await sluice.cancel(a);
    const b = await sluice.enqueue(job, { n: 2 }, { uniqueKey: 'c', uniqueWindowMs: 60_000 });
    expect(b).not.toBe(a);
    expect((await sluice.getJob(b)).state).toBe('available');
  });

  it('uniqueWindowMs on a queue with keepHistory false is refused (ValidationError, SQL 22023) and writes nothing', async () => {
    // Its completed jobs leave no row in job_history for the window to find:
    // a window there would let a duplicate in seconds after the completion.
    const job = defineJob({ name: 'uq.nohist', queue: 'uq.nohist', schema: payload });
    await sluice.queues.configure('uq.nohist', { keepHistory: false });
    const a = await sluice.enqueue(job, { n: 1 }, { uniqueKey: 'digest' });
    const { rows } = await db.pool.query(`SELECT id FROM sluice.claim(ARRAY['uq.nohist'], ARRAY[1], 'by-hand', 600000)`);
    expect(rows.map((r) => Number(r.id))).toEqual([a]);
    await db.pool.query('SELECT sluice.job_complete_many(ARRAY[$1::bigint], ARRAY[1])', [a]);

    await expectRejected(
      () => sluice.enqueue(job, { n: 424242 }, { uniqueKey: 'digest', uniqueWindowMs: 86_400_000 }),
      validation('sql', { mentions: ['uniqueWindowMs', 'keep_history', 'uq.nohist'], notMentions: ['424242'] }),
    );
    for (const call of [
      `SELECT sluice.enqueue('uq.nohist', '{"n": 2}', queue => 'uq.nohist', unique_key => 'digest', unique_window_ms => 86400000)`,
      `SELECT sluice.enqueue_many('uq.nohist', '[{"n": 3}]', queue => 'uq.nohist', unique_keys => ARRAY['digest'], unique_window_ms => 86400000)`,
    ]) {
      const before = await snapshot();
      const err = await db.pool.query(call).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('22023');
      expect((err as Error).message).toContain('unique_window_ms');
      expect(await snapshot()).toEqual(before);
    }

    // The queue's own window is not refused (every keyed enqueue, cron's too,
    // would fail on a setting): there, only a live job stands in for a key.
    await sluice.queues.configure('uq.nohist', { uniqueWindowMs: 86_400_000 });
    const b = await sluice.enqueue(job, { n: 4 }, { uniqueKey: 'digest' });
    expect(b).not.toBe(a);
    expect(await sluice.enqueue(job, { n: 5 }, { uniqueKey: 'digest' })).toBe(b);
  });
});

describe('bad input to the new options names the option and writes nothing', () => {
  const job = defineJob({ name: 'bu.bad', queue: 'bu.bad', schema: payload });

  it.each([
    ['options.uniqueKey', { uniqueKey: '' }],
    ['options.uniqueKey', { uniqueKey: 'k'.repeat(513) }],
    ['options.uniqueKey', { uniqueKey: 5 }],
    ['options.uniqueWindowMs', { uniqueKey: 'k', uniqueWindowMs: 0 }],
    ['options.uniqueWindowMs', { uniqueKey: 'k', uniqueWindowMs: -5 }],
    ['options.uniqueWindowMs', { uniqueKey: 'k', uniqueWindowMs: 1.5 }],
    ['options.uniqueWindowMs', { uniqueKey: 'k', uniqueWindowMs: '60s' }],
    // Without a key there is nothing to find within the window: the option would do nothing.
    ['options.uniqueWindowMs', { uniqueWindowMs: 60_000 }],
  ])('enqueue %s %j', async (field, options) => {
    const err = await sluice.enqueue(job, { n: 1 }, options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'bu.bad'`)).toBe(0);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bu.bad'`)).toBe(0);
  });

  it.each([
    ['settings.maxDepth', { maxDepth: 0 }],
    ['settings.maxDepth', { maxDepth: -1 }],
    ['settings.maxDepth', { maxDepth: 2.5 }],
    ['settings.overflow', { maxDepth: 10, overflow: 'drop_all' }],
    ['settings.overflow', { overflow: null }],
    ['settings.uniqueWindowMs', { uniqueWindowMs: 0 }],
  ])('queues.configure %s %j', async (field, settings) => {
    const err = await sluice.queues.configure('bu.badq', settings as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bu.badq'`)).toBe(0);
  });

  it('SQL queue_configure refuses an unknown overflow policy, writing nothing', async () => {
    await expect(db.pool.query(`SELECT sluice.queue_configure('bu.sqlbad', '{"overflow": "drop_all"}')`)).rejects.toMatchObject({ code: '22023' });
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.queues WHERE name = 'bu.sqlbad'`)).toBe(0);
  });
});

describe('unique keys and bounded queues while the job holding the key ends (two sessions)', () => {
  const sessions = new Sessions(() => db.url);
  afterAll(() => sessions.end());
  const session = () => sessions.open();
  const waitingOrDone = (pid: number, call: Promise<unknown>) => lockWaitOrSettled(db.pool, pid, call);

  async function enqueueSql(name: string, queue: string, key: string | null = null): Promise<number> {
    const { rows } = await db.pool.query(`SELECT sluice.enqueue($1, '{"n": 0}', queue => $2, unique_key => $3) AS id`, [name, queue, key]);
    return Number(rows[0].id);
  }

  /** Claims the one available job of `queue`: [id, attempt, lease]. */
  async function claimOne(queue: string): Promise<[number, number, string]> {
    const { rows } = await db.pool.query(`SELECT id, attempt, lease FROM sluice.claim(ARRAY[$1], ARRAY[1], 'w1', 60000)`, [queue]);
    expect(rows).toHaveLength(1);
    return [Number(rows[0].id), rows[0].attempt, rows[0].lease];
  }

  const COMPLETE = `SELECT sluice.job_complete_many(ARRAY[$1]::bigint[], ARRAY[$2]::int[], NULL, NULL, 'w1', ARRAY[$3]::bigint[])`;

  it('within uniqueWindowMs, an enqueue racing the completion of the job holding the key returns that job, not a duplicate', async () => {
    await sluice.queues.configure('uqr.win', { uniqueWindowMs: 600_000 });
    const first = await enqueueSql('uqr.win', 'uqr.win', 'k');
    const claimed = await claimOne('uqr.win');
    const s1 = await session();
    const s2 = await session();
    await s1.c.query('BEGIN');
    await s1.c.query(COMPLETE, claimed);
    const second = s2.c.query(`SELECT sluice.enqueue('uqr.win', '{"n": 1}', queue => 'uqr.win', unique_key => 'k') AS id`);
    await waitingOrDone(s2.pid, second);
    await s1.c.query('COMMIT');
    // The key was never free: held by the live job, then by its completion within the window.
    expect(Number((await second).rows[0].id)).toBe(first);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'uqr.win'`)).toBe(0);
  });

  it('within uniqueWindowMs, an insert that waits out the completion of a job that took the key meanwhile gives way to it', async () => {
    await sluice.queues.configure('uqr.late', { uniqueWindowMs: 600_000 });
    const s1 = await session();
    const s2 = await session();
    const s3 = await session();
    // s3 holds k2 uncommitted, so s2's insert of [k2, k] waits on its first row...
    await s3.c.query('BEGIN');
    await s3.c.query(`SELECT sluice.enqueue('uqr.late', '{"n": 0}', queue => 'uqr.late', unique_key => 'k2')`);
    const call = s2.c.query(`SELECT id FROM sluice.enqueue_many('uqr.late', '[{"n": 1}, {"n": 2}]', queue => 'uqr.late', unique_keys => ARRAY['k2', 'k']) AS id`);
    await waitingOrDone(s2.pid, call);
    // ...while a job with k is enqueued after s2 looked, claimed, and completing.
    const late = await enqueueSql('uqr.late', 'uqr.late', 'k');
    const claimed = await claimOne('uqr.late');
    expect(claimed[0]).toBe(late);
    await s1.c.query('BEGIN');
    await s1.c.query(COMPLETE, claimed);
    await s3.c.query('ROLLBACK');
    await waitingOrDone(s2.pid, call); // now on the completion
    await s1.c.query('COMMIT');
    const ids = (await call).rows.map((r) => Number(r.id));
    expect(ids[1]).toBe(late);
    const live = await db.pool.query(`SELECT id, unique_key FROM sluice.jobs WHERE queue = 'uqr.late'`);
    expect(live.rows).toEqual([{ id: String(ids[0]), unique_key: 'k2' }]);
  });

  it('enqueue_many gives every row an id when the job holding its key completes during the call', async () => {
    const first = await enqueueSql('uqr.null', 'uqr.null', 'k');
    const claimed = await claimOne('uqr.null');
    const s2 = await session();
    const s3 = await session();
    // s3 holds k2 uncommitted: the call waits on its second row after its first met the job holding k.
    await s3.c.query('BEGIN');
    await s3.c.query(`SELECT sluice.enqueue('uqr.null', '{"n": 0}', queue => 'uqr.null', unique_key => 'k2')`);
    const call = s2.c.query(`SELECT id FROM sluice.enqueue_many('uqr.null', '[{"n": 1}, {"n": 2}]', queue => 'uqr.null', unique_keys => ARRAY['k', 'k2']) AS id`);
    await waitingOrDone(s2.pid, call);
    await db.pool.query(COMPLETE, claimed);
    await s3.c.query('ROLLBACK');
    const ids = (await call).rows.map((r) => r.id as string | null);
    // k was held by `first` when the call looked: it stands in. k2 is a new job.
    expect(ids[0]).toBe(String(first));
    expect(ids[1]).not.toBeNull();
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE id = $1 AND unique_key = 'k2'`, [ids[1]])).toBe(1);
  });

  it('reject: a key whose job completes while the queue is full returns that job; nothing is admitted and then dropped', async () => {
    await sluice.queues.configure('uqr.depth', { maxDepth: 1, overflow: 'reject' });
    const first = await enqueueSql('uqr.depth', 'uqr.depth', 'k');
    const claimed = await claimOne('uqr.depth'); // running: not counted in the depth
    await enqueueSql('uqr.depth', 'uqr.depth'); // depth 1: full
    const s1 = await session();
    const s2 = await session();
    await s1.c.query('BEGIN');
    await s1.c.query(COMPLETE, claimed);
    const second = s2.c.query(`SELECT sluice.enqueue('uqr.depth', '{"n": 1}', queue => 'uqr.depth', unique_key => 'k') AS id`).then(
      (r) => Number(r.rows[0].id),
      (e: { code?: string }) => e.code,
    );
    await waitingOrDone(s2.pid, second);
    await s1.c.query('COMMIT');
    expect(await second).toBe(first);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'uqr.depth' AND state = 'dropped'`)).toBe(0);
    expect(await depth('uqr.depth')).toBe(1);
  });

  it('in a full queue (reject), a key completed within uniqueWindowMs returns that job instead of QueueFullError', async () => {
    const job = defineJob({ name: 'uqr.fullwin', queue: 'uqr.fullwin', schema: payload });
    await sluice.queues.configure('uqr.fullwin', { uniqueWindowMs: 600_000 });
    const first = await sluice.enqueue(job, { n: 1 }, { uniqueKey: 'k' });
    await db.pool.query(COMPLETE, await claimOne('uqr.fullwin'));
    await sluice.queues.configure('uqr.fullwin', { maxDepth: 1, overflow: 'reject' });
    await sluice.enqueue(job, { n: 2 }); // full
    expect(await sluice.enqueue(job, { n: 3 }, { uniqueKey: 'k' }).catch((e: unknown) => e)).toBe(first);
    expect(await depth('uqr.fullwin')).toBe(1);
  });

  it('in a bounded queue, a batch repeating one new key counts as the one job it adds', async () => {
    await sluice.queues.configure('uqr.dupkey', { maxDepth: 2, overflow: 'reject' });
    await enqueueSql('uqr.dupkey', 'uqr.dupkey'); // depth 1: room for one more
    const { rows } = await db.pool.query(
      `SELECT id FROM sluice.enqueue_many('uqr.dupkey', '[{"n": 1}, {"n": 2}]', queue => 'uqr.dupkey', unique_keys => ARRAY['x', 'x']) AS id`,
    );
    expect(rows).toHaveLength(2);
    expect(rows[0].id).toBe(rows[1].id);
    expect(await depth('uqr.dupkey')).toBe(2);
  });
});
