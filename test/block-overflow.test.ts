// The block overflow policy of bounded queues: a producer waits for room
// (woken by claims, with a poll fallback) until blockTimeoutMs, then gets
// QueueFullError; enqueueMany waits for room for the whole batch. The depth is
// recorded by a trigger at every insert, inside the inserting transaction, so
// "never over maxDepth" is checked by the database, not by sampling.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHttpApi } from '../packages/sluice/src/http/index.js';
import { QueueFullError, Sluice, createWorker, defineJob } from '../packages/sluice/src/index.js';
import { count, createTestDb, waitUntil, type TestDb } from './helpers/db.js';
import { Sessions, lockWaitOrSettled } from './helpers/sessions.js';

let db: TestDb;
let sluice: Sluice;

const payload = z.object({ producer: z.number().int(), n: z.number().int() });
const manyJob = defineJob({ name: 'blk.many', queue: 'blk.many', schema: payload, maxAttempts: 1 });
const smallJob = defineJob({ name: 'blk.small', queue: 'blk.small', schema: payload, maxAttempts: 1 });

beforeAll(async () => {
  db = await createTestDb();
  sluice = new Sluice({ pool: db.pool });
  // After each insert into a watched queue: its depth as the inserting transaction sees it.
  await db.pool.query(`
    CREATE TABLE blk_depth (queue text NOT NULL, depth integer NOT NULL, inserted integer NOT NULL);
    CREATE FUNCTION blk_record_depth() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO blk_depth
      SELECT n.queue, (SELECT count(*) FROM sluice.jobs j WHERE j.queue = n.queue AND j.state IN ('waiting', 'scheduled', 'available')), count(*)
      FROM new_rows n WHERE n.queue LIKE 'blk.%' GROUP BY n.queue;
      RETURN NULL;
    END $$;
    CREATE TRIGGER blk_record_depth AFTER INSERT ON sluice.jobs REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION blk_record_depth();`);
});

afterAll(async () => {
  await sluice?.close();
  await db?.drop();
});

describe('overflow block', () => {
  it('8 producers, a queue of depth 100 and one worker: depth never over 100, every job enqueued and run exactly once', async () => {
    const PRODUCERS = 8;
    const EACH = 60; // 40 one by one, then 4 batches of 5
    // Paused until the producers have filled it, so they do have to wait.
    await sluice.queues.configure('blk.many', { maxDepth: 100, overflow: 'block', paused: true });
    const runs = new Map<string, number>();
    const worker = createWorker({
      connectionString: db.url,
      pollIntervalMs: 100,
      concurrency: 4,
      handlers: [
        manyJob.handle(async (p) => {
          const key = `${p.producer}:${p.n}`;
          runs.set(key, (runs.get(key) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 2));
        }),
      ],
    });
    await worker.start();
    const producers = Array.from({ length: PRODUCERS }, () => new Sluice({ connectionString: db.url, poolSize: 2 }));
    try {
      const producing = Promise.all(
        producers.map(async (s, producer) => {
          const mine: number[] = [];
          for (let n = 0; n < 40; n++) mine.push(await s.enqueue(manyJob, { producer, n }, { blockTimeoutMs: 60_000 }));
          for (let b = 0; b < 4; b++) {
            const batch = Array.from({ length: 5 }, (_, k) => ({ producer, n: 40 + b * 5 + k }));
            mine.push(...(await s.enqueueMany(manyJob, batch, { blockTimeoutMs: 60_000 })));
          }
          return mine;
        }),
      );
      await waitUntil(async () => (await count(db.pool, `SELECT coalesce(max(depth), 0) n FROM blk_depth WHERE queue = 'blk.many'`)) === 100, {
        what: 'the queue full',
      });
      await sluice.queues.resume('blk.many');
      const ids = await producing;
      expect(new Set(ids.flat()).size).toBe(PRODUCERS * EACH);
      await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'blk.many'`)) === PRODUCERS * EACH, {
        timeoutMs: 60_000,
        what: 'every job completed',
      });
    } finally {
      await Promise.all(producers.map((s) => s.close()));
      await worker.stop();
    }
    const { rows } = await db.pool.query<{ max: number; inserts: number; rows: number }>(
      `SELECT max(depth)::int AS max, count(*)::int AS inserts, sum(inserted)::int AS rows FROM blk_depth WHERE queue = 'blk.many'`,
    );
    expect(rows[0]!.rows).toBe(PRODUCERS * EACH);
    expect(rows[0]!.max).toBe(100);
    expect(runs.size).toBe(PRODUCERS * EACH);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'blk.many' AND (state <> 'completed' OR attempt <> 1)`)).toBe(0);
  });

  it('a wall clock stepped an hour ahead while a producer waits does not end its wait early: it gets the room freed later', async () => {
    await sluice.queues.configure('blk.clock', { maxDepth: 1, overflow: 'block', paused: true });
    const clockJob = defineJob({ name: 'blk.clock', queue: 'blk.clock', schema: payload, maxAttempts: 1 });
    const first = await sluice.enqueue(clockJob, { producer: 0, n: 1 });
    const realNow = Date.now.bind(Date);
    try {
      const waiting = sluice.enqueue(clockJob, { producer: 0, n: 2 }, { blockTimeoutMs: 10_000 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      // As NTP or a resumed VM would step it: wall time jumps, the elapsed time does not.
      const stepMs = 3_600_000;
      Date.now = () => realNow() + stepMs;
      await new Promise((r) => setTimeout(r, 600));
      await sluice.cancel(first);
      const answer = await waiting;
      expect(answer).not.toBeInstanceOf(Error);
      expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'blk.clock'`)).toBe(1);
    } finally {
      Date.now = realNow;
      await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'blk.clock'`);
    }
  });

  it('no room within blockTimeoutMs: QueueFullError saying how long it waited, nothing written; a batch larger than maxDepth fails at once', async () => {
    await sluice.queues.configure('blk.small', { maxDepth: 2, overflow: 'block', paused: true });
    await sluice.enqueueMany(smallJob, [{ producer: 0, n: 1 }, { producer: 0, n: 2 }]);
    const before = await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'blk.small'`);
    const err = await sluice.enqueue(smallJob, { producer: 0, n: 3 }, { blockTimeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect(err).toMatchObject({ queue: 'blk.small', waitedMs: 300 });
    expect((err as Error).message).toContain('waited 300 ms');
    const huge = await sluice
      .enqueueMany(smallJob, [1, 2, 3].map((n) => ({ producer: 1, n })), { blockTimeoutMs: 60_000 })
      .catch((e: unknown) => e);
    expect(huge).toBeInstanceOf(QueueFullError);
    expect((huge as QueueFullError).waitedMs).toBeUndefined();
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'blk.small'`)).toBe(before);
    // From SQL a full block queue raises (SQL cannot wait): SLQ02.
    await expect(db.pool.query(`SELECT sluice.enqueue('blk.small', '{"producer": 2, "n": 1}', queue => 'blk.small')`)).rejects.toMatchObject({
      code: 'SLQ02',
    });
    await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'blk.small'`);
  });

  it('with a listenConnectionString, a waitFor after a blocked enqueue still times out on time (the LISTEN session is not left to the enqueue)', async () => {
    const direct = new Sluice({ connectionString: db.url, listenConnectionString: db.url });
    try {
      await direct.queues.configure('blk.listen', { maxDepth: 1, overflow: 'block', paused: true });
      const listenJob = defineJob({ name: 'blk.listen', queue: 'blk.listen', schema: payload, maxAttempts: 1 });
      const id = await direct.enqueue(listenJob, { producer: 0, n: 1 });
      const blocked = await direct.enqueue(listenJob, { producer: 0, n: 2 }, { blockTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(blocked).toBeInstanceOf(QueueFullError);
      // The listen pool on that address holds one connection: had the enqueue
      // kept the session, waitFor would wait for it before its timeout ran.
      const outcome = await Promise.race([
        direct.waitFor(id, { timeoutMs: 1_000 }).then(
          () => 'resolved',
          (e: Error) => e.name,
        ),
        new Promise((r) => setTimeout(() => r('still pending after 6 s'), 6_000)),
      ]);
      expect(outcome).toBe('WaitTimeoutError');
    } finally {
      await direct.close();
      await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'blk.listen'`);
    }
  });

  // poolSize 1 without a LISTEN connection of its own is refused (test/option-conflicts.test.ts):
  // the session would leave no connection for the statements the waiters need.
  it.each([
    ['poolSize 2', (url: string) => ({ connectionString: url, poolSize: 2 })],
    ['poolSize 1 and a listenConnectionString', (url: string) => ({ connectionString: url, poolSize: 1, listenConnectionString: url })],
  ])(
    'a client of %s with a waitFor and a blocked enqueue at once listens on one session, still runs other queries, and both end when the job runs',
    async (_what, options) => {
      const app = `blk_shared_${Math.random().toString(36).slice(2, 8)}`;
      const url = new URL(db.url);
      url.searchParams.set('application_name', app);
      const client = new Sluice(options(url.toString()));
      const sharedJob = defineJob({ name: 'blk.shared', queue: 'blk.shared', schema: payload, maxAttempts: 1 });
      const listening = () =>
        count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN %'`, [app]);
      // Settles to a label rather than hanging the test when the client is stuck.
      const within = <T>(ms: number, p: Promise<T>) =>
        Promise.race([p, new Promise<string>((r) => setTimeout(() => r(`still pending after ${ms} ms`), ms).unref())]);
      let worker: ReturnType<typeof createWorker> | null = null;
      try {
        await client.queues.configure('blk.shared', { maxDepth: 1, overflow: 'block', paused: true });
        const id = await client.enqueue(sharedJob, { producer: 5, n: 1 });
        const waited = client.waitFor(id, { timeoutMs: 30_000 });
        const blocked = client.enqueue(sharedJob, { producer: 5, n: 2 }, { blockTimeoutMs: 30_000 });
        waited.catch(() => {});
        blocked.catch(() => {});
        await waitUntil(listening, { what: 'the client listening' });
        // Let the blocked enqueue reach its wait (its first try finds the queue full).
        await new Promise((r) => setTimeout(r, 300));
        expect(await within(5_000, client.getJob(id).then((j) => j.state))).toBe('available');
        expect(await listening()).toBe(1);
        worker = createWorker({ connectionString: db.url, pollIntervalMs: 100, handlers: [sharedJob.handle((p) => ({ n: p.n }))] });
        await worker.start();
        expect(await within(5_000, client.queues.resume('blk.shared').then(() => 'resumed'))).toBe('resumed');
        expect(await within(10_000, blocked.then((next) => typeof next))).toBe('number');
        expect(await within(10_000, waited)).toEqual({ n: 1 });
        // Nobody waits any more: the session goes back, and a script that waited ends by itself.
        await waitUntil(async () => (await listening()) === 0, { what: 'the LISTEN session given back' });
      } finally {
        await worker?.stop();
        await within(5_000, client.close());
        await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'blk.shared'`);
      }
    },
  );

  it('producers waiting in transactions that hold every connection of the pool still give up at blockTimeoutMs, and a waitFor at its timeout (the LISTEN session cannot get one)', async () => {
    await sluice.queues.configure('blk.starved', { maxDepth: 1, overflow: 'block', paused: true });
    const starved = defineJob({ name: 'blk.starved', queue: 'blk.starved', schema: payload, maxAttempts: 1 });
    const waiting = await sluice.enqueue(starved, { producer: 5, n: 0 });
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const client = new Sluice({ pool });
    const held = [await pool.connect(), await pool.connect()];
    try {
      for (const c of held) await c.query('BEGIN');
      const outcomes = await Promise.all(
        held.map((c, k) =>
          client.enqueue(starved, { producer: 5, n: k + 1 }, { tx: c, blockTimeoutMs: 1_000 }).then(
            () => 'enqueued',
            (e: unknown) => (e as Error).name,
          ),
        ),
      );
      expect(outcomes).toEqual(['QueueFullError', 'QueueFullError']);
      // So does a waitFor meanwhile, at its timeout.
      await expect(client.waitFor(waiting, { timeoutMs: 1_000 })).rejects.toMatchObject({ name: 'WaitTimeoutError' });
    } finally {
      for (const c of held) {
        await c.query('ROLLBACK').catch(() => {});
        c.release();
      }
      await client.close();
      await pool.end();
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'blk.starved'`)).toBe(1);
    await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'blk.starved'`);
  }, 30_000);

  it('a transaction that already enqueued into a full queue gets QueueFullError at once instead of waiting while it holds the queue row', async () => {
    // A limit on the queue, so that its claims take the queue row too: they would wait for this transaction.
    await sluice.queues.configure('blk.held', { maxDepth: 2, overflow: 'block', concurrency: 5, paused: true });
    const held = defineJob({ name: 'blk.held', queue: 'blk.held', schema: payload, maxAttempts: 1 });
    await sluice.enqueue(held, { producer: 4, n: 0 });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await sluice.enqueue(held, { producer: 4, n: 1 }, { tx: client });
      // Full now, and the row is this transaction's until it ends: no room can come.
      const err = await sluice.enqueue(held, { producer: 4, n: 2 }, { tx: client, blockTimeoutMs: 120_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QueueFullError);
      expect((err as Error).message).toMatch(/queue "blk\.held" is full: this transaction holds the queue's row since an earlier enqueue into it/);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
    // Another transaction still waits for room as before (nothing of the first one lingers).
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'blk.held'`)).toBe(1);
    await db.pool.query(`DELETE FROM sluice.jobs WHERE queue = 'blk.held'`);
  }, 30_000);

  it('enqueueMany waits for room for the whole batch; a producer waiting inside its transaction does not hold the queue row', async () => {
    await sluice.queues.configure('blk.small', { maxDepth: 2, overflow: 'block', paused: true });
    await sluice.enqueue(smallJob, { producer: 3, n: 0 });
    await db.pool.query(`DELETE FROM blk_depth WHERE queue = 'blk.small'`);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      let settled = false;
      const pair = sluice
        .enqueueMany(smallJob, [{ producer: 3, n: 1 }, { producer: 3, n: 2 }], { tx: client, blockTimeoutMs: 60_000 })
        .finally(() => (settled = true));
      // Waiting: its transaction is idle, and the queue row is free for others.
      const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM pg_stat_activity WHERE pid = $1 AND state = 'idle in transaction'`, [pid])) === 1, {
        what: 'the producer waiting in its transaction',
      });
      expect(settled).toBe(false);
      // Its depth re-checks lock the row for a moment each; between them the row is free.
      const locker = await db.pool.connect();
      try {
        await waitUntil(
          () => locker.query(`BEGIN; SELECT 1 FROM sluice.queues WHERE name = 'blk.small' FOR UPDATE NOWAIT; COMMIT`).then(() => true, async () => {
            await locker.query('ROLLBACK');
            return false;
          }),
          { what: 'the queue row free while the producer waits', timeoutMs: 5_000 },
        );
      } finally {
        locker.release();
      }
      // A worker claims the one waiting job: room for two, and the pair goes in at once.
      const worker = createWorker({ connectionString: db.url, pollIntervalMs: 100, handlers: [smallJob.handle(() => undefined)] });
      await worker.start();
      try {
        await sluice.queues.resume('blk.small');
        const ids = await pair;
        expect(ids).toHaveLength(2);
        await client.query('COMMIT');
        await waitUntil(async () => (await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE id = ANY($1::bigint[])`, [ids])) === 2, {
          what: 'the pair ran',
        });
      } finally {
        await worker.stop();
      }
    } finally {
      await client.end();
    }
    // One insert of two rows, never one of them alone.
    const { rows } = await db.pool.query(`SELECT inserted, depth FROM blk_depth WHERE queue = 'blk.small'`);
    expect(rows).toHaveLength(1);
    expect(rows[0].inserted).toBe(2);
    expect(rows[0].depth).toBeLessThanOrEqual(2);
  });

  it('over HTTP a full queue is 503 queue_full, not 500', async () => {
    const rejectJob = defineJob({ name: 'blk.reject', queue: 'blk.reject', schema: payload });
    await sluice.queues.configure('blk.reject', { maxDepth: 1, overflow: 'reject', paused: true });
    await sluice.enqueue(rejectJob, { producer: 4, n: 0 });
    const token = 'block-overflow-token-0123';
    const res = await createHttpApi({ sluice, jobs: [rejectJob], token }).request('/jobs/blk.reject', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ payload: { producer: 4, n: 1 } }),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('queue_full');
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'blk.reject'`)).toBe(1);
  });
});

describe('overflow and a job changing state at the same moment (two sessions)', () => {
  const sessions = new Sessions(() => db.url);
  afterAll(() => sessions.end());
  const session = () => sessions.open();
  const waitingOrDone = (backend: number | string, call: Promise<unknown>) => lockWaitOrSettled(db.pool, backend, call);

  const CLAIM = `SELECT id, attempt, lease FROM sluice.claim(ARRAY[$1], ARRAY[1], 'w1', 60000)`;
  const COMPLETE = `SELECT sluice.job_complete_many(ARRAY[$1]::bigint[], ARRAY[$2]::int[], NULL, NULL, 'w1', ARRAY[$3]::bigint[])`;
  const ENQUEUE = `SELECT sluice.enqueue('blk.oldest', '{"producer": 6, "n": 0}', queue => 'blk.oldest') AS id`;

  it('drop_oldest does not drop a job a claim is taking: once running it is no longer counted, and nothing is dropped', async () => {
    await sluice.queues.configure('blk.oldest', { maxDepth: 1, overflow: 'drop_oldest' });
    const a = Number((await db.pool.query(ENQUEUE)).rows[0].id);
    const s1 = await session();
    const s2 = await session();
    await s1.c.query('BEGIN');
    const claimed = await s1.c.query(CLAIM, ['blk.oldest']);
    expect(Number(claimed.rows[0].id)).toBe(a);
    const second = s2.c.query(ENQUEUE);
    await waitingOrDone(s2.pid, second);
    await s1.c.query('COMMIT');
    const b = Number((await second).rows[0].id);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'blk.oldest'`)).toBe(0);
    const live = await db.pool.query(`SELECT id::int, state FROM sluice.jobs WHERE queue = 'blk.oldest' ORDER BY id`);
    expect(live.rows).toEqual([
      { id: a, state: 'running' },
      { id: b, state: 'available' },
    ]);
  });

  it('block: a key whose job completes while the queue is full returns that job; nothing is admitted and then dropped', async () => {
    const keyJob = defineJob({ name: 'blk.key', queue: 'blk.key', schema: payload, maxAttempts: 1 });
    await sluice.queues.configure('blk.key', { maxDepth: 1, overflow: 'block' });
    const first = await sluice.enqueue(keyJob, { producer: 7, n: 1 }, { uniqueKey: 'k' });
    const [claimed] = (await db.pool.query(CLAIM, ['blk.key'])).rows; // running: not counted in the depth
    await sluice.enqueue(keyJob, { producer: 7, n: 2 }); // depth 1: full
    const s1 = await session();
    await s1.c.query('BEGIN');
    await s1.c.query(COMPLETE, [claimed.id, claimed.attempt, claimed.lease]);
    // From the client (which waits for room) and from SQL (which cannot).
    const app = `blk_key_${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(db.url);
    url.searchParams.set('application_name', app);
    const client = new Sluice({ connectionString: url.toString(), poolSize: 2 });
    const s2 = await session();
    try {
      const fromClient = client.enqueue(keyJob, { producer: 7, n: 3 }, { uniqueKey: 'k', blockTimeoutMs: 0 }).catch((e: unknown) => e);
      const fromSql = s2.c
        .query(`SELECT sluice.enqueue('blk.key', '{"producer": 7, "n": 4}', queue => 'blk.key', unique_key => 'k') AS id`)
        .then(
          (r) => Number(r.rows[0].id),
          (e: { code?: string }) => e.code,
        );
      await waitingOrDone(app, fromClient);
      await waitingOrDone(s2.pid, fromSql);
      await s1.c.query('COMMIT');
      expect(await fromClient).toBe(first);
      expect(await fromSql).toBe(first);
    } finally {
      await client.close();
    }
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.job_history WHERE queue = 'blk.key' AND state = 'dropped'`)).toBe(0);
    expect(await count(db.pool, `SELECT count(*) n FROM sluice.jobs WHERE queue = 'blk.key'`)).toBe(1);
  });
});
